-- The plain join-and-group DuckDB query a SQL user would write for the same numbers as
-- valuetrack.queries.ab_aggregate (one model, "sum" KPI, CUPED on, no segment): first exposure
-- per unit, LEFT JOIN all of the unit's outcomes, keep y and x by CASE in one GROUP BY per unit,
-- then group per day and arm. No pre-filtering of the outcome rows by time, no other tricks.
-- Named parameters as in handwritten_aggregate.sql (timestamps are naive UTC).
WITH first_exposure AS (
    SELECT customer_id, min(scored_at) AS first_ts, min(arm) AS arm_lo, max(arm) AS arm_hi
    FROM exposures
    WHERE model_id = $model AND arm IN ($treatment, $control) AND scored_at < $cutoff
    GROUP BY customer_id
), per_unit AS (
    SELECT f.customer_id,
           CAST(timezone($tz, CAST(f.first_ts AS TIMESTAMPTZ)) AS DATE) AS day,
           CASE WHEN f.arm_lo = f.arm_hi THEN f.arm_lo END AS arm,
           coalesce(sum(CASE WHEN o.event_at >= f.first_ts
                              AND o.event_at < f.first_ts + to_days($window_days)
                              AND o.event_at < $cutoff THEN o.value END), 0)::DOUBLE AS y,
           coalesce(sum(CASE WHEN o.event_at < f.first_ts
                              AND o.event_at >= f.first_ts - to_days($covariate_days) THEN o.value END), 0)::DOUBLE AS x
    FROM first_exposure f
    LEFT JOIN outcomes o ON o.customer_id = f.customer_id
    WHERE f.first_ts >= $cohort_from AND f.first_ts < $cohort_to
    GROUP BY f.customer_id, f.first_ts, f.arm_lo, f.arm_hi
)
SELECT day, arm,
       count(*) FILTER (WHERE arm IS NOT NULL) AS n,
       count(*) AS n_units,
       sum(y) FILTER (WHERE arm IS NOT NULL) AS sum_y,
       sum(y * y) FILTER (WHERE arm IS NOT NULL) AS sum_y2,
       sum(x) FILTER (WHERE arm IS NOT NULL) AS sum_x,
       sum(x * x) FILTER (WHERE arm IS NOT NULL) AS sum_x2,
       sum(x * y) FILTER (WHERE arm IS NOT NULL) AS sum_xy
FROM per_unit
GROUP BY day, arm
ORDER BY day, arm NULLS LAST
