"""Celery tasks of the matcher app: take ids, call one service, safe to run twice."""
