"""A task's settings from a Google Secret Manager secret (``cluster.settings_secret``), read when the task starts.

Vertex AI Pipelines cannot hand a task a Kubernetes Secret, so the pipeline spec carries only the secret version's
*name* (``MATTA_SETTINGS_SECRET``, set by `pipelines.task_settings`) and the task fetches the payload itself, with
its own service account (Application Default Credentials: the Vertex run's service account, or Workload Identity on
GKE). The payload is a JSON object of environment settings, the keys the Kubernetes Secret and ConfigMap would
hold (`SETTINGS_SECRET_KEYS`), e.g. ``{"MLFLOW_TRACKING_URI": "https://mlflow.example.com",
"MLFLOW_TRACKING_TOKEN": "..."}``; they become environment variables before MLflow is first used.

Values are secrets: no message here ever contains one, only key names and the secret's resource name.
"""

from __future__ import annotations

import base64
import binascii
import json
import os
import time
from collections.abc import Mapping, MutableMapping
from typing import Any

from matta_core.cluster.settings import MLFLOW_SECRET_REQUIRED_KEYS, SETTINGS_SECRET_KEYS, check_secret_version_name

#: The environment variable that names the secret version (``projects/P/secrets/S/versions/V``).
SETTINGS_SECRET_ENV = "MATTA_SETTINGS_SECRET"
#: Overrides the Secret Manager endpoint. A plain ``http://`` endpoint (a local emulator or test stub) is called
#: without credentials: a bearer token must never cross an unencrypted connection.
SECRET_MANAGER_ENDPOINT_ENV = "MATTA_SECRET_MANAGER_ENDPOINT"
DEFAULT_ENDPOINT = "https://secretmanager.googleapis.com"
#: The IAM role a task's service account needs on the secret to read its payload.
ACCESSOR_ROLE = "roles/secretmanager.secretAccessor"
SCOPES = ("https://www.googleapis.com/auth/cloud-platform",)
# Answers worth another try: quota and Google's transient server errors (the documented retry set).
_RETRIED_STATUS = frozenset({429, 500, 502, 503, 504})
_REQUEST_TIMEOUT_SECONDS = 30


class SettingsSecretError(RuntimeError):
    """The settings secret could not be read or holds settings a task cannot use; the message names the secret."""


def load_settings_secret(
    environ: MutableMapping[str, str] = os.environ, *, attempts: int = 3, backoff_seconds: float = 1.0
) -> list[str]:
    """If ``MATTA_SETTINGS_SECRET`` is set in `environ`, put the secret's settings into `environ`; return the keys
    set (in the payload's order), ``[]`` when no secret is named. `SettingsSecretError` says what went wrong.

    A key the environment already holds (non-empty) is kept, not overwritten: a value set on purpose on the task or
    in the image (a per-run override, a test's server) outranks a secret shared by every run, and loading twice is
    harmless. `attempts` tries (with exponential `backoff_seconds`) ride out quota and transient server errors.
    """
    name = environ.get(SETTINGS_SECRET_ENV, "").strip()
    if not name:
        return []
    try:
        check_secret_version_name(name)
    except ValueError as error:
        raise SettingsSecretError(f"{SETTINGS_SECRET_ENV}: {error}") from None
    endpoint = environ.get(SECRET_MANAGER_ENDPOINT_ENV, "").strip() or DEFAULT_ENDPOINT
    data = access_secret_version(name, endpoint, attempts=attempts, backoff_seconds=backoff_seconds)
    settings = parse_settings(name, data)
    set_keys = []
    for key, value in settings.items():
        if not environ.get(key):
            environ[key] = value
            set_keys.append(key)
    return set_keys


def access_secret_version(name: str, endpoint: str = DEFAULT_ENDPOINT, *, attempts: int = 3,
                          backoff_seconds: float = 1.0) -> bytes:
    """The payload of secret version `name`, through Secret Manager's REST ``GET /v1/{name}:access``, checked
    against its CRC32C when the answer carries one."""
    import requests
    from google.auth.exceptions import GoogleAuthError

    url = f"{endpoint.rstrip('/')}/v1/{name}:access"
    session = _session(name, endpoint)
    problem = ""
    for attempt in range(max(1, attempts)):
        if attempt:
            time.sleep(backoff_seconds * 2 ** (attempt - 1))
        try:
            response = session.get(url, timeout=_REQUEST_TIMEOUT_SECONDS)
        except GoogleAuthError as error:  # e.g. the metadata server would not issue a token
            raise SettingsSecretError(f"settings secret {name}: no access token for the task's credentials "
                                      f"({type(error).__name__}: {error})") from None
        except requests.RequestException as error:
            problem = f"Secret Manager at {endpoint} is not reachable ({type(error).__name__}: {error})"
            continue
        if response.status_code in _RETRIED_STATUS:
            problem = f"Secret Manager answered HTTP {response.status_code}{_google_message(response)}"
            continue
        return _payload(name, response)
    raise SettingsSecretError(f"settings secret {name}: {problem} (tried {max(1, attempts)} times)")


def _session(name: str, endpoint: str) -> Any:
    """An HTTP session that adds the task's credentials to each request (none for a plain-http test endpoint)."""
    import google.auth
    from google.auth.credentials import AnonymousCredentials
    from google.auth.exceptions import DefaultCredentialsError
    from google.auth.transport.requests import AuthorizedSession

    if endpoint.startswith("http://"):
        return AuthorizedSession(AnonymousCredentials())
    try:
        credentials, _ = google.auth.default(scopes=list(SCOPES))
    except DefaultCredentialsError as error:
        raise SettingsSecretError(
            f"settings secret {name}: no Application Default Credentials ({error}); a task reads the secret with "
            "its service account: on Vertex AI the run's --service-account, on GKE Workload Identity") from None
    return AuthorizedSession(credentials)


def _payload(name: str, response: Any) -> bytes:
    """The decoded payload of a Secret Manager ``access`` answer, or `SettingsSecretError` for an HTTP error."""
    status = response.status_code
    if status == 403:
        secret = name.rsplit("/versions/", 1)[0]
        raise SettingsSecretError(
            f"settings secret {name}: permission denied{_google_message(response)}; the task's service account "
            f"needs {ACCESSOR_ROLE} on {secret} (gcloud secrets add-iam-policy-binding ... --role {ACCESSOR_ROLE}), "
            "and the Secret Manager API must be enabled in its project")
    if status == 404:
        raise SettingsSecretError(
            f"settings secret {name}: not found{_google_message(response)}; check the project, the secret id "
            "and the version (create one with gcloud secrets versions add SECRET --data-file=settings.json)")
    if status != 200:
        raise SettingsSecretError(f"settings secret {name}: Secret Manager answered HTTP {status}"
                                  f"{_google_message(response)}")
    try:
        payload = response.json()["payload"]
        data = base64.b64decode(payload["data"], validate=True)
    except (ValueError, KeyError, TypeError, binascii.Error):
        raise SettingsSecretError(f"settings secret {name}: the answer is not a Secret Manager access response "
                                  "(no base64 payload.data)") from None
    checksum = payload.get("dataCrc32c")
    if checksum is not None:
        import google_crc32c

        if google_crc32c.value(data) != int(checksum):
            raise SettingsSecretError(f"settings secret {name}: the payload does not match its CRC32C checksum "
                                      "(corrupted in transit); rerun the task")
    return data


def _google_message(response: Any) -> str:
    """Google's error text (``{"error": {"status": ..., "message": ...}}``) as `` (STATUS: message)``, else ``""``.

    Error answers describe the request, never the payload: safe to show."""
    try:
        error = response.json()["error"]
        return f" ({error.get('status', '')}: {error.get('message', '')})"
    except (ValueError, KeyError, TypeError, AttributeError):
        return ""


def parse_settings(name: str, data: bytes) -> dict[str, str]:
    """The settings in payload `data` of secret `name`: a JSON object of string values over `SETTINGS_SECRET_KEYS`
    with ``MLFLOW_TRACKING_URI`` set; `SettingsSecretError` naming the offending keys (never their values)."""
    try:
        settings = json.loads(data.decode("utf-8"))
    except UnicodeDecodeError:
        raise SettingsSecretError(f"settings secret {name}: the payload is not UTF-8 text; it must be a JSON "
                                  "object of settings") from None
    except json.JSONDecodeError as error:  # its message gives a position, not the text
        raise SettingsSecretError(f"settings secret {name}: the payload is not JSON ({error.msg} at line "
                                  f"{error.lineno}, column {error.colno}); it must be a JSON object of settings, "
                                  'e.g. {"MLFLOW_TRACKING_URI": "https://mlflow.example.com"}') from None
    if not isinstance(settings, Mapping):
        raise SettingsSecretError(f"settings secret {name}: the payload is a JSON {type(settings).__name__}, not "
                                  "an object of settings")
    unknown = [key for key in settings if key not in SETTINGS_SECRET_KEYS]
    if unknown:
        raise SettingsSecretError(f"settings secret {name}: unknown keys {', '.join(map(repr, unknown))}; allowed: "
                                  f"{', '.join(SETTINGS_SECRET_KEYS)}")
    not_text = [f"{key} ({type(value).__name__})" for key, value in settings.items() if not isinstance(value, str)]
    if not_text:
        raise SettingsSecretError(f"settings secret {name}: values must be strings (as environment variables "
                                  f"are), got {', '.join(not_text)}; quote them, e.g. \"true\"")
    missing = [key for key in MLFLOW_SECRET_REQUIRED_KEYS if not settings.get(key)]
    if missing:
        raise SettingsSecretError(f"settings secret {name}: {', '.join(missing)} is missing or empty; the secret "
                                  "must name the MLflow server")
    return dict(settings)
