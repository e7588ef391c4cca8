-- duckdb: billing_gcp_export (placeholders as sent; parameter names below)
-- params: ['end', 'label_key', 'label_value', 'param_1', 'param_2', 'start']
SELECT CAST(b.usage_start_time AS DATE) AS day, b.currency AS currency, sum(coalesce(CAST(b.cost AS DOUBLE PRECISION), %(param_1)s) + coalesce((SELECT SUM(CAST("vt_c"."amount" AS DOUBLE)) FROM UNNEST(b.credits) AS "vt_u"("vt_c")), %(param_2)s)) AS amount 
FROM billing_admin.gcp_billing_export_v1 AS b 
WHERE CAST(b.usage_start_time AS DATE) >= %(start)s AND CAST(b.usage_start_time AS DATE) <= %(end)s AND EXISTS (SELECT 1 FROM UNNEST(b.labels) AS "vt_u"("vt_l") WHERE "vt_l"."key" = %(label_key)s AND "vt_l"."value" = %(label_value)s) AND "service"."description" = 'Vertex AI' GROUP BY CAST(b.usage_start_time AS DATE), b.currency ORDER BY CAST(b.usage_start_time AS DATE), b.currency
