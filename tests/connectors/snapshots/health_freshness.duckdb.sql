-- duckdb: health_freshness (placeholders as sent; parameter names below)
-- params: ['model_value']
SELECT (SELECT max(e.scored_at) AS max_1 
FROM exposures AS e 
WHERE e.model_id = %(model_value)s) AS max_exposure_ts, (SELECT max(o.event_at) AS max_2 
FROM outcomes AS o 
WHERE "event_type" = 'purchase') AS max_outcome_ts
