-- snowflake: overlap_membership (placeholders as sent; parameter names below)
-- params: ['s0_arm_0', 's0_arm_1', 's0_cutoff', 's0_in_0', 's0_in_1', 's0_model_0', 's0_model_1', 's0_treatment_0']
SELECT per_unit.mask, count(*) AS units 
FROM (SELECT served.unit AS unit, CAST(sum(served.bit) AS BIGINT) AS mask 
FROM (SELECT DISTINCT models0.bit AS bit, shared0.customer_id AS unit 
FROM exposures AS shared0 JOIN (SELECT %(s0_model_0)s AS model_value, %(s0_arm_0)s AS arm, 1 AS bit, 0 AS zone UNION ALL SELECT %(s0_model_1)s AS model_value, %(s0_arm_1)s AS arm, 2 AS bit, 0 AS zone) AS models0 ON shared0.model_id = models0.model_value AND shared0.arm = models0.arm 
WHERE shared0.model_id IN (%(s0_in_0)s, %(s0_in_1)s) AND shared0.arm IN (%(s0_treatment_0)s) AND shared0.scored_at < %(s0_cutoff)s) AS served GROUP BY served.unit) AS per_unit GROUP BY per_unit.mask
 LIMIT 4097
