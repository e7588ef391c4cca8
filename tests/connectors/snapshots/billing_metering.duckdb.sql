-- duckdb: billing_metering (placeholders as sent; parameter names below)
-- params: ['end', 'param_1', 'start']
SELECT CAST(b.start_time AS DATE) AS day, sum(coalesce(CAST(b.credits_used AS DOUBLE PRECISION), %(param_1)s)) AS amount 
FROM account_usage.warehouse_metering_history AS b 
WHERE CAST(b.start_time AS DATE) >= %(start)s AND CAST(b.start_time AS DATE) <= %(end)s AND "warehouse_name" = 'ML_SCORING_WH' GROUP BY CAST(b.start_time AS DATE) ORDER BY CAST(b.start_time AS DATE)
