import requests

from app.config import settings


class CrmClient:
    def __init__(self, base_url: str, token: str):
        self._base_url = base_url.rstrip("/")
        self._session = requests.Session()
        self._session.headers["Authorization"] = f"Bearer {token}"

    @classmethod
    def from_settings(cls) -> "CrmClient":
        return cls(settings.CRM_BASE_URL, settings.CRM_TOKEN)

    def upsert_contact(self, payload: dict) -> None:
        resp = self._session.post(f"{self._base_url}/v3/contacts/upsert", json=payload, timeout=10)
        resp.raise_for_status()

    def upsert_contacts(self, payloads: list[dict]) -> None:
        """Batch upsert; the CRM accepts at most 200 inputs per call."""
        if len(payloads) > 200:
            raise ValueError("CRM batch upsert takes at most 200 contacts")
        resp = self._session.post(
            f"{self._base_url}/v3/contacts/batch/upsert",
            json={"inputs": payloads},
            timeout=30,
        )
        resp.raise_for_status()

    def list_owners(self) -> list[dict]:
        resp = self._session.get(f"{self._base_url}/v3/owners", timeout=10)
        resp.raise_for_status()
        return resp.json()["results"]
