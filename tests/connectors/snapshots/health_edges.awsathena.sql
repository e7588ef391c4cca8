-- awsathena: health_edges (placeholders as sent; parameter names below)
-- params: ['from_ref', 'model_value', 'param_1', 'param_2', 'param_3', 'param_4', 'param_5', 'param_6', 'param_7', 'param_8', 'param_9', 'to_ref']
SELECT approx_percentile(CAST(e.score AS DOUBLE), %(param_1)s) AS q0, approx_percentile(CAST(e.score AS DOUBLE), %(param_2)s) AS q1, approx_percentile(CAST(e.score AS DOUBLE), %(param_3)s) AS q2, approx_percentile(CAST(e.score AS DOUBLE), %(param_4)s) AS q3, approx_percentile(CAST(e.score AS DOUBLE), %(param_5)s) AS q4, approx_percentile(CAST(e.score AS DOUBLE), %(param_6)s) AS q5, approx_percentile(CAST(e.score AS DOUBLE), %(param_7)s) AS q6, approx_percentile(CAST(e.score AS DOUBLE), %(param_8)s) AS q7, approx_percentile(CAST(e.score AS DOUBLE), %(param_9)s) AS q8 
FROM exposures AS e 
WHERE e.scored_at >= %(from_ref)s AND e.scored_at < %(to_ref)s AND e.model_id = %(model_value)s AND e.score IS NOT NULL
