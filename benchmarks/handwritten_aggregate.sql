-- The best hand-written DuckDB SQL we know for the A/B aggregate of one model ("sum" KPI,
-- CUPED on, no segment): the numbers valuetrack.queries.ab_aggregate returns, for review.
-- Named parameters: $model, $treatment, $control, $tz, $cutoff, $cohort_from, $cohort_to,
-- $outcomes_from, $outcomes_to, $window_days, $covariate_days (timestamps are naive UTC).
WITH first_exposure AS (
    SELECT customer_id AS unit, min(scored_at) AS first_ts, min(arm) AS arm_lo, max(arm) AS arm_hi
    FROM exposures
    WHERE model_id = $model AND arm IN ($treatment, $control) AND scored_at < $cutoff
    GROUP BY customer_id
), cohort AS (
    SELECT unit, first_ts,
           CAST(timezone($tz, CAST(first_ts AS TIMESTAMPTZ)) AS DATE) AS day,
           CASE WHEN arm_lo = arm_hi THEN arm_lo END AS arm
    FROM first_exposure
    WHERE first_ts >= $cohort_from AND first_ts < $cohort_to
), per_unit AS (
    SELECT c.day, c.arm,
           coalesce(sum(o.value) FILTER (WHERE o.event_at >= c.first_ts), 0)::DOUBLE AS y,
           coalesce(sum(o.value) FILTER (WHERE o.event_at < c.first_ts), 0)::DOUBLE AS x
    FROM cohort c
    LEFT JOIN outcomes o
      ON o.customer_id = c.unit
     AND o.event_at >= $outcomes_from AND o.event_at < $outcomes_to
     AND o.event_at >= c.first_ts - to_days($covariate_days)
     AND o.event_at < c.first_ts + to_days($window_days)
    GROUP BY c.unit, c.day, c.arm
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
