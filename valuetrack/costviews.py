"""The two cost views finance reads, in the same words on every surface (pages, reports, JSON,
docs; D31). Plain data: pages, reports and the CLI import it without the statistics stack.

- Running costs: net value and ROI after the running costs of the period (the monthly cost,
  pro-rated by day, and the cost per 1,000 predictions). One-off costs are not in them; they are
  what the payback date recovers.
- Fully loaded: the running costs plus the one-off costs amortised straight line by day over
  ``amortisation_months`` (default 36) from the later of their date and the launch.
"""

from __future__ import annotations

RUNNING = "running costs"
FULLY_LOADED = "fully loaded"

NET_RUNNING = "Net value (running costs)"
ROI_RUNNING = "ROI (running costs)"
NET_LOADED = "Net value (fully loaded)"
ROI_LOADED = "ROI (fully loaded)"

RUNNING_HELP = ("Running costs: gross value − the running costs of the period (the monthly cost pro-rated by "
                "day, plus the cost per 1,000 predictions). One-off costs are not included; the payback date "
                "shows when they are recovered.")
LOADED_HELP = ("Fully loaded: gross value − the running costs − the one-off costs amortised straight line by day "
               "over the model's amortisation period (amortisation_months, default 36 months) from the later of "
               "their date and the launch.")

VIEWS = {
    "running": {"label": NET_RUNNING, "roi_label": ROI_RUNNING, "fields": ["net", "ci_net", "roi", "ci_roi", "cost"],
                "definition": RUNNING_HELP},
    "fully_loaded": {"label": NET_LOADED, "roi_label": ROI_LOADED,
                     "fields": ["net_fully_loaded", "ci_net_fully_loaded", "roi_fully_loaded", "ci_roi_fully_loaded",
                                "cost_fully_loaded"],
                     "definition": LOADED_HELP},
}
"""What ``value --json`` states under ``cost_views``: each view's label, its fields and definition."""
