-- bigquery: health_daily (placeholders as sent; parameter names below)
-- params: ['from_daily', 'model_value', 'to_daily', 'tz']
SELECT date(`e`.`scored_at`, :tz) AS `day`, `e`.`arm` AS `arm`, count(*) AS `n_exposures`, count(DISTINCT `e`.`customer_id`) AS `n_units` 
FROM `exposures` AS `e` 
WHERE `e`.`scored_at` >= :from_daily AND `e`.`scored_at` < :to_daily AND `e`.`model_id` = :model_value GROUP BY `day`, `e`.`arm` ORDER BY `day`, `e`.`arm`
