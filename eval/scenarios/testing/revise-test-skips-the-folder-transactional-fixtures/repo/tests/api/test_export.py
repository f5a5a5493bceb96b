from fastapi.testclient import TestClient

from app.db import SessionLocal
from app.main import app
from app.models import Project


def test_export_lists_every_project_as_csv():
    with SessionLocal() as session:
        session.add_all([Project(name="alpha"), Project(name="beta")])
        session.commit()
    response = TestClient(app).get("/projects/export.csv")
    assert response.status_code == 200
    assert response.text.splitlines()[1:] == ["alpha", "beta"]
