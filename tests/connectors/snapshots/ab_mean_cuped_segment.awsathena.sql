-- awsathena: ab_mean_cuped_segment (placeholders as sent; parameter names below)
-- params: ['coalesce_1', 'cohort_from', 'cohort_to', 'control', 'cutoff', 'model_value', 'nullif_1', 'nullif_2', 'outcomes_from', 'outcomes_to', 'param_1', 'param_2', 'param_3', 'param_4', 'param_5', 'param_6', 'param_7', 'recent_from', 'treatment', 'tz']
WITH vt_first_exposure AS 
(SELECT e.customer_id AS unit, min(e.scored_at) AS first_ts, min(e.arm) AS arm_lo, max(e.arm) AS arm_hi, min_by(e.country, e.scored_at) AS segment 
FROM exposures AS e 
WHERE e.arm IN (%(treatment)s, %(control)s) AND e.scored_at < %(cutoff)s AND e.model_id = %(model_value)s AND e.customer_id IN (SELECT recent.customer_id 
FROM exposures AS recent 
WHERE recent.arm IN (%(treatment)s, %(control)s) AND recent.scored_at >= %(recent_from)s AND recent.scored_at < %(cutoff)s AND recent.model_id = %(model_value)s) GROUP BY e.customer_id), 
vt_cohort AS 
(SELECT vt_first_exposure.unit AS unit, vt_first_exposure.first_ts AS first_ts, CAST(((vt_first_exposure.first_ts AT TIME ZONE %(param_3)s) AT TIME ZONE %(tz)s) AS DATE) AS day, CASE WHEN (vt_first_exposure.arm_lo = vt_first_exposure.arm_hi) THEN vt_first_exposure.arm_lo ELSE NULL END AS arm, vt_first_exposure.segment AS segment 
FROM vt_first_exposure 
WHERE vt_first_exposure.first_ts >= %(cohort_from)s AND vt_first_exposure.first_ts < %(cohort_to)s), 
vt_outcome AS 
(SELECT o.customer_id AS unit, o.event_at AS event_ts, CAST(o.value AS DOUBLE) AS value 
FROM outcomes AS o 
WHERE o.event_at >= %(outcomes_from)s AND o.event_at < %(outcomes_to)s AND "event_type" = 'purchase')
 SELECT unit_values.day, unit_values.arm, unit_values.segment, count(unit_values.y) AS n, count(*) AS n_units, sum(unit_values.y) AS sum_y, sum(unit_values.y * unit_values.y) AS sum_y2, sum(unit_values.x) AS sum_x, sum(unit_values.x * unit_values.x) AS sum_x2, sum(unit_values.x * unit_values.y) AS sum_xy 
FROM (SELECT per_unit.day AS day, per_unit.arm AS arm, per_unit.segment AS segment, CASE WHEN (per_unit.arm IS NOT NULL) THEN CAST(CAST(per_unit.y_sum AS DOUBLE) / CAST(CAST(nullif(per_unit.y_values, %(nullif_1)s) AS DOUBLE) AS DOUBLE) AS DOUBLE) ELSE NULL END AS y, CASE WHEN (per_unit.arm IS NOT NULL AND CAST(CAST(per_unit.y_sum AS DOUBLE) / CAST(CAST(nullif(per_unit.y_values, %(nullif_1)s) AS DOUBLE) AS DOUBLE) AS DOUBLE) IS NOT NULL) THEN CAST(coalesce(CAST(per_unit.x_sum AS DOUBLE) / CAST(CAST(nullif(per_unit.x_values, %(nullif_2)s) AS DOUBLE) AS DOUBLE), %(coalesce_1)s) AS DOUBLE) ELSE NULL END AS x 
FROM (SELECT vt_cohort.unit AS unit, vt_cohort.day AS day, vt_cohort.arm AS arm, vt_cohort.segment AS segment, sum(CASE WHEN (vt_outcome.event_ts >= vt_cohort.first_ts) THEN vt_outcome.value ELSE NULL END) AS y_sum, count(CASE WHEN (vt_outcome.event_ts >= vt_cohort.first_ts AND vt_outcome.unit IS NOT NULL) THEN %(param_1)s ELSE NULL END) AS y_events, count(CASE WHEN (vt_outcome.event_ts >= vt_cohort.first_ts) THEN vt_outcome.value ELSE NULL END) AS y_values, sum(CASE WHEN (vt_outcome.event_ts < vt_cohort.first_ts) THEN vt_outcome.value ELSE NULL END) AS x_sum, count(CASE WHEN (vt_outcome.event_ts < vt_cohort.first_ts AND vt_outcome.unit IS NOT NULL) THEN %(param_2)s ELSE NULL END) AS x_events, count(CASE WHEN (vt_outcome.event_ts < vt_cohort.first_ts) THEN vt_outcome.value ELSE NULL END) AS x_values 
FROM vt_cohort LEFT OUTER JOIN vt_outcome ON vt_outcome.unit = vt_cohort.unit AND vt_outcome.event_ts >= date_add(%(param_4)s, %(param_5)s, vt_cohort.first_ts) AND vt_outcome.event_ts < date_add(%(param_6)s, %(param_7)s, vt_cohort.first_ts) GROUP BY vt_cohort.unit, vt_cohort.day, vt_cohort.arm, vt_cohort.segment) AS per_unit) AS unit_values GROUP BY unit_values.day, unit_values.arm, unit_values.segment ORDER BY unit_values.day, unit_values.arm, unit_values.segment
