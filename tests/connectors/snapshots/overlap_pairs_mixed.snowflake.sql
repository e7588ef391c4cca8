-- snowflake: overlap_pairs_mixed (placeholders as sent; parameter names below)
-- params: ['arm_2', 'cutoff_2', 's0_arm_0', 's0_arm_1', 's0_cutoff', 's0_cutoff_0', 's0_cutoff_1', 's0_in_0', 's0_in_1', 's0_model_0', 's0_model_1', 's0_treatment_0', 's0_treatment_1']
SELECT a.m AS model_a, b.m AS model_b, count(*) AS shared 
FROM (SELECT DISTINCT models0.m AS m, shared0.customer_id AS unit 
FROM exposures AS shared0 JOIN (SELECT %(s0_model_0)s AS model_value, %(s0_arm_0)s AS arm, 0 AS m, 0 AS zone UNION ALL SELECT %(s0_model_1)s AS model_value, %(s0_arm_1)s AS arm, 1 AS m, 1 AS zone) AS models0 ON shared0.model_id = models0.model_value AND shared0.arm = models0.arm 
WHERE shared0.model_id IN (%(s0_in_0)s, %(s0_in_1)s) AND shared0.arm IN (%(s0_treatment_0)s, %(s0_treatment_1)s) AND shared0.scored_at < %(s0_cutoff)s AND (models0.zone = 0 AND shared0.scored_at < %(s0_cutoff_0)s OR models0.zone = 1 AND shared0.scored_at < %(s0_cutoff_1)s) UNION ALL SELECT DISTINCT 2 AS m, e2.customer_id AS unit 
FROM exposures AS e2 
WHERE e2.arm = %(arm_2)s AND e2.scored_at < %(cutoff_2)s) AS a JOIN (SELECT DISTINCT models0.m AS m, shared0.customer_id AS unit 
FROM exposures AS shared0 JOIN (SELECT %(s0_model_0)s AS model_value, %(s0_arm_0)s AS arm, 0 AS m, 0 AS zone UNION ALL SELECT %(s0_model_1)s AS model_value, %(s0_arm_1)s AS arm, 1 AS m, 1 AS zone) AS models0 ON shared0.model_id = models0.model_value AND shared0.arm = models0.arm 
WHERE shared0.model_id IN (%(s0_in_0)s, %(s0_in_1)s) AND shared0.arm IN (%(s0_treatment_0)s, %(s0_treatment_1)s) AND shared0.scored_at < %(s0_cutoff)s AND (models0.zone = 0 AND shared0.scored_at < %(s0_cutoff_0)s OR models0.zone = 1 AND shared0.scored_at < %(s0_cutoff_1)s) UNION ALL SELECT DISTINCT 2 AS m, e2.customer_id AS unit 
FROM exposures AS e2 
WHERE e2.arm = %(arm_2)s AND e2.scored_at < %(cutoff_2)s) AS b ON a.unit = b.unit AND a.m < b.m GROUP BY a.m, b.m
