-- awsathena: health_daily (placeholders as sent; parameter names below)
-- params: ['from_daily', 'model_value', 'param_1', 'to_daily', 'tz']
SELECT CAST(((e.scored_at AT TIME ZONE %(param_1)s) AT TIME ZONE %(tz)s) AS DATE) AS day, e.arm AS arm, count(*) AS n_exposures, count(DISTINCT e.customer_id) AS n_units 
FROM exposures AS e 
WHERE e.scored_at >= %(from_daily)s AND e.scored_at < %(to_daily)s AND e.model_id = %(model_value)s GROUP BY CAST(((e.scored_at AT TIME ZONE %(param_1)s) AT TIME ZONE %(tz)s) AS DATE), e.arm ORDER BY day, e.arm
