"""One FastAPI router per group of endpoints; `reviewers.serving.app.create_app` includes them all."""
