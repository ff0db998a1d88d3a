"""One router per resource: analysis, jobs, health, the web page."""
