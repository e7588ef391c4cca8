-- bigquery: billing_gcp_export (placeholders as sent; parameter names below)
-- params: ['end', 'label_key', 'label_value', 'param_1', 'param_2', 'start']
SELECT CAST(`b`.`usage_start_time` AS DATE) AS `day`, `b`.`currency` AS `currency`, sum(coalesce(CAST(`b`.`cost` AS FLOAT64), :param_1) + coalesce((SELECT SUM(CAST(`vt_c`.`amount` AS FLOAT64)) FROM UNNEST(`b`.`credits`) AS `vt_c`), :param_2)) AS `amount` 
FROM `billing_admin`.`gcp_billing_export_v1` AS `b` 
WHERE CAST(`b`.`usage_start_time` AS DATE) >= :start AND CAST(`b`.`usage_start_time` AS DATE) <= :end AND EXISTS (SELECT 1 FROM UNNEST(`b`.`labels`) AS `vt_l` WHERE `vt_l`.`key` = :label_key AND `vt_l`.`value` = :label_value) AND `service`.`description` = 'Vertex AI' GROUP BY CAST(`b`.`usage_start_time` AS DATE), `b`.`currency` ORDER BY CAST(`b`.`usage_start_time` AS DATE), `b`.`currency`
