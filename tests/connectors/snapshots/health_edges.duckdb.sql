-- duckdb: health_edges (placeholders as sent; parameter names below)
-- params: ['from_ref', 'model_value', 'param_1', 'param_2', 'param_3', 'param_4', 'param_5', 'param_6', 'param_7', 'param_8', 'param_9', 'to_ref']
SELECT quantile_cont(CAST(e.score AS DOUBLE PRECISION), %(param_1)s) AS q0, quantile_cont(CAST(e.score AS DOUBLE PRECISION), %(param_2)s) AS q1, quantile_cont(CAST(e.score AS DOUBLE PRECISION), %(param_3)s) AS q2, quantile_cont(CAST(e.score AS DOUBLE PRECISION), %(param_4)s) AS q3, quantile_cont(CAST(e.score AS DOUBLE PRECISION), %(param_5)s) AS q4, quantile_cont(CAST(e.score AS DOUBLE PRECISION), %(param_6)s) AS q5, quantile_cont(CAST(e.score AS DOUBLE PRECISION), %(param_7)s) AS q6, quantile_cont(CAST(e.score AS DOUBLE PRECISION), %(param_8)s) AS q7, quantile_cont(CAST(e.score AS DOUBLE PRECISION), %(param_9)s) AS q8 
FROM exposures AS e 
WHERE e.scored_at >= %(from_ref)s AND e.scored_at < %(to_ref)s AND e.model_id = %(model_value)s AND e.score IS NOT NULL
