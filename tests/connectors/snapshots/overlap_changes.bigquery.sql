-- bigquery: overlap_changes (placeholders as sent; parameter names below)
-- params: ['arm_2', 'before_base_2', 'before_settled_2', 'cutoff_2', 's0_arm_0', 's0_arm_1', 's0_before_base_0', 's0_before_base_1', 's0_before_settled_0', 's0_before_settled_1', 's0_cutoff', 's0_cutoff_0', 's0_cutoff_1', 's0_in_0', 's0_in_1', 's0_model_0', 's0_model_1', 's0_since', 's0_since_0', 's0_since_1', 's0_treatment_0', 'since_2']
WITH `vt_recent` AS 
(SELECT DISTINCT `shared0`.`customer_id` AS `unit` 
FROM `exposures` AS `shared0` JOIN (SELECT :s0_model_0 AS `model_value`, :s0_arm_0 AS `arm`, 0 AS `zone` UNION ALL SELECT :s0_model_1 AS `model_value`, :s0_arm_1 AS `arm`, 1 AS `zone`) AS `models0` ON `shared0`.`model_id` = `models0`.`model_value` AND `shared0`.`arm` = `models0`.`arm` 
WHERE `shared0`.`model_id` IN (:s0_in_0, :s0_in_1) AND `shared0`.`arm` IN (:s0_treatment_0) AND `shared0`.`scored_at` < :s0_cutoff AND (`models0`.`zone` = 0 AND `shared0`.`scored_at` < :s0_cutoff_0 OR `models0`.`zone` = 1 AND `shared0`.`scored_at` < :s0_cutoff_1) AND `shared0`.`scored_at` >= :s0_since AND (`models0`.`zone` = 0 AND `shared0`.`scored_at` >= :s0_since_0 OR `models0`.`zone` = 1 AND `shared0`.`scored_at` >= :s0_since_1) UNION ALL SELECT DISTINCT `e2`.`customer_id` AS `unit` 
FROM `exposures` AS `e2` 
WHERE `e2`.`arm` = :arm_2 AND `e2`.`scored_at` < :cutoff_2 AND `e2`.`scored_at` >= :since_2)
 SELECT `per_unit`.`mask`, `per_unit`.`base_mask`, `per_unit`.`settled_mask`, count(*) AS `units` 
FROM (SELECT `served`.`unit` AS `unit`, CAST(sum(`served`.`bit`) AS INT64) AS `mask`, CAST(sum(`served`.`bit` * `served`.`before_base`) AS INT64) AS `base_mask`, CAST(sum(`served`.`bit` * `served`.`before_settled`) AS INT64) AS `settled_mask` 
FROM (SELECT `models0`.`bit` AS `bit`, `shared0`.`customer_id` AS `unit`, max(CASE WHEN (`models0`.`zone` = 0 AND `shared0`.`scored_at` < :s0_before_base_0 OR `models0`.`zone` = 1 AND `shared0`.`scored_at` < :s0_before_base_1) THEN 1 ELSE 0 END) AS `before_base`, max(CASE WHEN (`models0`.`zone` = 0 AND `shared0`.`scored_at` < :s0_before_settled_0 OR `models0`.`zone` = 1 AND `shared0`.`scored_at` < :s0_before_settled_1) THEN 1 ELSE 0 END) AS `before_settled` 
FROM `exposures` AS `shared0` JOIN (SELECT :s0_model_0 AS `model_value`, :s0_arm_0 AS `arm`, 1 AS `bit`, 0 AS `zone` UNION ALL SELECT :s0_model_1 AS `model_value`, :s0_arm_1 AS `arm`, 2 AS `bit`, 1 AS `zone`) AS `models0` ON `shared0`.`model_id` = `models0`.`model_value` AND `shared0`.`arm` = `models0`.`arm` 
WHERE `shared0`.`model_id` IN (:s0_in_0, :s0_in_1) AND `shared0`.`arm` IN (:s0_treatment_0) AND `shared0`.`scored_at` < :s0_cutoff AND (`models0`.`zone` = 0 AND `shared0`.`scored_at` < :s0_cutoff_0 OR `models0`.`zone` = 1 AND `shared0`.`scored_at` < :s0_cutoff_1) AND `shared0`.`customer_id` IN (SELECT `vt_recent`.`unit` 
FROM `vt_recent`) GROUP BY `models0`.`bit`, `shared0`.`customer_id` UNION ALL SELECT 4 AS `bit`, `e2`.`customer_id` AS `unit`, max(CASE WHEN (`e2`.`scored_at` < :before_base_2) THEN 1 ELSE 0 END) AS `before_base`, max(CASE WHEN (`e2`.`scored_at` < :before_settled_2) THEN 1 ELSE 0 END) AS `before_settled` 
FROM `exposures` AS `e2` 
WHERE `e2`.`arm` = :arm_2 AND `e2`.`scored_at` < :cutoff_2 AND `e2`.`customer_id` IN (SELECT `vt_recent`.`unit` 
FROM `vt_recent`) GROUP BY `e2`.`customer_id`) AS `served` GROUP BY `served`.`unit`) AS `per_unit` GROUP BY `per_unit`.`mask`, `per_unit`.`base_mask`, `per_unit`.`settled_mask`
 LIMIT 4097
