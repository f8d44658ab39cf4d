"""Python requests as an agent runs it: HTTPS_PROXY and REQUESTS_CA_BUNDLE
from the environment. Usage: python get.py URL (sends the placeholder)."""
import os
import sys

import requests

response = requests.get(
    sys.argv[1],
    headers={"Authorization": "Bearer " + os.environ["PKG_TOKEN"]},
    timeout=20,
)
print(f"status={response.status_code}")
print(f"x-you-sent={response.headers.get('x-you-sent')}")
print(response.text)
