-- bigquery: batch_health_daily (placeholders as sent; parameter names below)
-- params: ['from_daily', 'model_value_0', 'model_value_1', 'to_daily', 'tz']
SELECT `e`.`model_id` AS `model_value`, date(`e`.`scored_at`, :tz) AS `day`, `e`.`arm` AS `arm`, count(*) AS `n_exposures`, count(DISTINCT `e`.`customer_id`) AS `n_units` 
FROM `exposures` AS `e` 
WHERE `e`.`scored_at` >= :from_daily AND `e`.`scored_at` < :to_daily AND `e`.`model_id` IN (:model_value_0, :model_value_1) GROUP BY `e`.`model_id`, `day`, `e`.`arm` ORDER BY `e`.`model_id`, `day`, `e`.`arm`
