"""A client generated from Gatehouse's OpenAPI document does real work.

Usage: generated_client.py <base url> <session token> <scratch dir>

Generates a Python client with openapi-python-client from the live
`/v1/openapi.json`, imports it, and through it alone (typed models and
operations named by the document's operationIds): registers an agent,
mints an agent token for it, and with that agent token creates a job.
Every answer is parsed into the generated response models; anything
else fails the run. No hand-written request is involved.
"""

import importlib
import json
import subprocess
import sys
import urllib.request
from pathlib import Path


def main() -> int:
    base, token, scratch = sys.argv[1], sys.argv[2], Path(sys.argv[3])
    scratch.mkdir(parents=True, exist_ok=True)
    doc = scratch / "openapi.json"
    with urllib.request.urlopen(f"{base}/v1/openapi.json") as resp:
        doc.write_bytes(resp.read())
    json.loads(doc.read_text())
    # --meta none: the package itself, importable from `scratch`.
    pkg = "gatehouse_client"
    out = scratch / pkg
    log = scratch / "generate.log"
    with log.open("w") as sink:
        done = subprocess.run(
            [
                str(Path(sys.executable).with_name("openapi-python-client")),
                "generate",
                "--path",
                str(doc),
                "--output-path",
                str(out),
                "--overwrite",
                "--meta",
                "none",
            ],
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    if done.returncode != 0:
        print(log.read_text())
        return 1
    sys.path.insert(0, str(scratch))
    client_mod = importlib.import_module(f"{pkg}.client")
    models = importlib.import_module(f"{pkg}.models")
    create_agent = importlib.import_module(f"{pkg}.api.agents.create_agent")
    mint_token = importlib.import_module(f"{pkg}.api.tokens.mint_token")
    create_job = importlib.import_module(f"{pkg}.api.jobs.create_job")
    job_credentials = importlib.import_module(f"{pkg}.api.job.get_job_credentials")

    human = client_mod.AuthenticatedClient(base_url=base, token=token, raise_on_unexpected_status=True)
    agent = "generated-client"

    r = create_agent.sync_detailed(client=human, body=models.NewAgent(name=agent))
    assert r.status_code == 201, (r.status_code, r.content)
    assert r.parsed.name == agent, r.parsed

    r = mint_token.sync_detailed(
        client=human,
        body=models.MintRequestType0(
            class_=models.MintRequestType0Class.AGENT, subject=agent, scope="jobs:create"
        ),
    )
    assert r.status_code == 201, (r.status_code, r.content)
    minted = r.parsed
    assert isinstance(minted, models.MintedToken), minted
    assert minted.subject == agent and minted.class_ == "agent", minted

    as_agent = client_mod.AuthenticatedClient(base_url=base, token=minted.token, raise_on_unexpected_status=True)

    r = create_job.sync_detailed(client=as_agent, body=models.CreateJob(agent=agent, ttl_seconds=600))
    assert r.status_code == 201, (r.status_code, r.content)
    job = r.parsed
    assert isinstance(job, models.JobCreated), job
    assert job.job_id and job.job_token, job

    as_job = client_mod.AuthenticatedClient(base_url=base, token=job.job_token, raise_on_unexpected_status=True)
    # The job's own token works: a job without grants has no credentials.
    r = job_credentials.sync_detailed(client=as_job)
    assert r.status_code == 204, (r.status_code, r.content)
    print(f"generated client: minted {minted.jti} for {agent}, created job {job.job_id}")
    print("1 passed, 0 failed")
    return 0


if __name__ == "__main__":
    sys.exit(main())
