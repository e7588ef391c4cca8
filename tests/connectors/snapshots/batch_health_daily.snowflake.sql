-- snowflake: batch_health_daily (placeholders as sent; parameter names below)
-- params: ['from_daily', 'model_value_0', 'model_value_1', 'param_1', 'to_daily', 'tz']
SELECT e.model_id AS model_value, CAST(convert_timezone(%(param_1)s, %(tz)s, e.scored_at) AS DATE) AS day, e.arm AS arm, count(*) AS n_exposures, count(DISTINCT e.customer_id) AS n_units 
FROM exposures AS e 
WHERE e.scored_at >= %(from_daily)s AND e.scored_at < %(to_daily)s AND e.model_id IN (%(model_value_0)s, %(model_value_1)s) GROUP BY e.model_id, CAST(convert_timezone(%(param_1)s, %(tz)s, e.scored_at) AS DATE), e.arm ORDER BY e.model_id, day, e.arm
