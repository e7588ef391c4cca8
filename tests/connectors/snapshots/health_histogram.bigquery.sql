-- bigquery: health_histogram (placeholders as sent; parameter names below)
-- params: ['edge_0', 'edge_1', 'edge_2', 'from_hist', 'model_value', 'param_1', 'param_2', 'param_3', 'param_4', 'param_5', 'param_6', 'to_hist', 'tz']
SELECT date(`e`.`scored_at`, :tz) AS `day`, CASE WHEN (CAST(`e`.`score` AS FLOAT64) IS NULL) THEN NULL ELSE CASE WHEN (CAST(`e`.`score` AS FLOAT64) >= :edge_0) THEN :param_1 ELSE :param_2 END + CASE WHEN (CAST(`e`.`score` AS FLOAT64) >= :edge_1) THEN :param_3 ELSE :param_4 END + CASE WHEN (CAST(`e`.`score` AS FLOAT64) >= :edge_2) THEN :param_5 ELSE :param_6 END END AS `bin`, count(*) AS `n` 
FROM `exposures` AS `e` 
WHERE `e`.`scored_at` >= :from_hist AND `e`.`scored_at` < :to_hist AND `e`.`model_id` = :model_value GROUP BY `day`, `bin` ORDER BY `day`, `bin`
