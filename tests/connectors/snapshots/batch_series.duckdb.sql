-- duckdb: batch_series (placeholders as sent; parameter names below)
-- params: ['end', 'start']
SELECT CAST(s.kpi_date AS DATE) AS day, CAST(s.orders AS DOUBLE PRECISION) AS c0, CAST(s.visits AS DOUBLE PRECISION) AS c1, CAST(s.sessions AS DOUBLE PRECISION) AS c2 
FROM analytics.daily_kpis AS s 
WHERE CAST(s.kpi_date AS DATE) >= %(start)s AND CAST(s.kpi_date AS DATE) <= %(end)s ORDER BY CAST(s.kpi_date AS DATE)
