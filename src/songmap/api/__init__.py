"""The HTTP service (``songmap serve``): FastAPI app, worker pool, jobs, web page.

Needs the ``serve`` extra (``pip install "songmap[serve]"``). Build the app with
``songmap.api.app.create_app(settings)``.
"""
