"""The web dashboard: static pages served from the package, sessions opened with a key, and a JSON API that
answers through the gateway's own handlers (`routes.py`) plus the few views only a dashboard needs
(`views.py`). Nothing here is on the path of an inference request.
"""
