-- duckdb: health_daily (placeholders as sent; parameter names below)
-- params: ['from_daily', 'model_value', 'to_daily', 'tz']
SELECT CAST(timezone(%(tz)s, CAST(e.scored_at AS TIMESTAMP WITH TIME ZONE)) AS DATE) AS day, e.arm AS arm, count(*) AS n_exposures, count(DISTINCT e.customer_id) AS n_units 
FROM exposures AS e 
WHERE e.scored_at >= %(from_daily)s AND e.scored_at < %(to_daily)s AND e.model_id = %(model_value)s GROUP BY CAST(timezone(%(tz)s, CAST(e.scored_at AS TIMESTAMP WITH TIME ZONE)) AS DATE), e.arm ORDER BY day, e.arm
