-- duckdb: batch_health_freshness (placeholders as sent; parameter names below)
-- params: ['model_value_0', 'model_value_1']
SELECT e.model_id AS model_value, max(e.scored_at) AS max_exposure_ts, (SELECT max(o.event_at) AS max_1 
FROM outcomes AS o 
WHERE "event_type" = 'purchase') AS max_outcome_ts 
FROM exposures AS e 
WHERE e.model_id IN (%(model_value_0)s, %(model_value_1)s) GROUP BY e.model_id ORDER BY e.model_id
