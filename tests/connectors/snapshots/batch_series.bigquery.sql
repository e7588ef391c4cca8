-- bigquery: batch_series (placeholders as sent; parameter names below)
-- params: ['end', 'start']
SELECT CAST(`s`.`kpi_date` AS DATE) AS `day`, CAST(`s`.`orders` AS FLOAT64) AS `c0`, CAST(`s`.`visits` AS FLOAT64) AS `c1`, CAST(`s`.`sessions` AS FLOAT64) AS `c2` 
FROM `analytics`.`daily_kpis` AS `s` 
WHERE CAST(`s`.`kpi_date` AS DATE) >= :start AND CAST(`s`.`kpi_date` AS DATE) <= :end ORDER BY CAST(`s`.`kpi_date` AS DATE)
