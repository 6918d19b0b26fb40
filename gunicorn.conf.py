"""gunicorn settings for the web process (the Procfile's `web`).

The app is built once in the master before the workers are forked (`preload_app`), so the
port opens only when the app is ready: the first request after a start is answered as fast
as any other (building the app — importing the LINE SDK, the dialogs and the editions —
takes about 2 s). Each worker then drops any database connection inherited from the master.
"""
preload_app = True
worker_class = "gthread"


def post_fork(server, worker):
    app = server.app.wsgi()
    services = app.extensions.get("gonghao")
    if services is not None:
        services.db.engine.dispose(close=False)  # the parent's connections stay the parent's
