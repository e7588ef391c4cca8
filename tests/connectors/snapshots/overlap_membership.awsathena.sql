-- awsathena: overlap_membership (placeholders as sent; parameter names below)
-- params: ['arm_0', 'arm_1', 'cutoff_0', 'cutoff_1', 'model_0', 'model_1']
SELECT per_unit.mask, count(*) AS units 
FROM (SELECT served.unit AS unit, sum(served.bit) AS mask 
FROM (SELECT DISTINCT 1 AS bit, e0.customer_id AS unit 
FROM exposures AS e0 
WHERE e0.arm = %(arm_0)s AND e0.scored_at < %(cutoff_0)s AND e0.model_id = %(model_0)s UNION ALL SELECT DISTINCT 2 AS bit, e1.customer_id AS unit 
FROM exposures AS e1 
WHERE e1.arm = %(arm_1)s AND e1.scored_at < %(cutoff_1)s AND e1.model_id = %(model_1)s) AS served GROUP BY served.unit) AS per_unit GROUP BY per_unit.mask
