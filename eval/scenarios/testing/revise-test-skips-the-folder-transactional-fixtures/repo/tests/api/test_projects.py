from app.models import Project


def test_projects_are_listed_newest_first(client, db_session):
    db_session.add_all([Project(name="old"), Project(name="new")])
    db_session.flush()
    names = [p["name"] for p in client.get("/projects").json()]
    assert names == ["new", "old"]
