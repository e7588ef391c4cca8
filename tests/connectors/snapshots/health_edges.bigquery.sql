-- bigquery: health_edges (placeholders as sent; parameter names below)
-- params: ['from_ref', 'model_value', 'to_ref']
SELECT APPROX_QUANTILES(CAST(`e`.`score` AS FLOAT64), 1000)[OFFSET(100)] AS `q0`, APPROX_QUANTILES(CAST(`e`.`score` AS FLOAT64), 1000)[OFFSET(200)] AS `q1`, APPROX_QUANTILES(CAST(`e`.`score` AS FLOAT64), 1000)[OFFSET(300)] AS `q2`, APPROX_QUANTILES(CAST(`e`.`score` AS FLOAT64), 1000)[OFFSET(400)] AS `q3`, APPROX_QUANTILES(CAST(`e`.`score` AS FLOAT64), 1000)[OFFSET(500)] AS `q4`, APPROX_QUANTILES(CAST(`e`.`score` AS FLOAT64), 1000)[OFFSET(600)] AS `q5`, APPROX_QUANTILES(CAST(`e`.`score` AS FLOAT64), 1000)[OFFSET(700)] AS `q6`, APPROX_QUANTILES(CAST(`e`.`score` AS FLOAT64), 1000)[OFFSET(800)] AS `q7`, APPROX_QUANTILES(CAST(`e`.`score` AS FLOAT64), 1000)[OFFSET(900)] AS `q8` 
FROM `exposures` AS `e` 
WHERE `e`.`scored_at` >= :from_ref AND `e`.`scored_at` < :to_ref AND `e`.`model_id` = :model_value AND `e`.`score` IS NOT NULL
