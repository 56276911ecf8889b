"""moto's ECR (PyPI `moto[server]`) for the tests, unchanged except for GetAuthorizationToken,
which here also

* appends one JSON line per call, `{"region": ..., "account": ..., "access_key": ...}`, to the
  file named by `MOTO_ECR_CALL_LOG` (the region and access key id the request was signed with),
  so tests can count calls and see which credentials and region signed them;
* answers `expiresAt` = now + `MOTO_ECR_TOKEN_TTL_SECONDS` when that is set (moto itself
  always answers 2015-01-01, a token that expired long ago).

The token itself is moto's: base64 of `AWS:<account>-auth-token`. `MOTO_ECR_ANSWER` makes the
call go wrong instead: `deny` (AccessDeniedException, worded as AWS words it), `no-data` (an
empty `authorizationData`), `not-base64`, `no-colon` (a token that decodes to no `user:password`).

Importing this module applies the patch; `moto_server.py` imports it and starts the server.
"""

import datetime
import json
import os
from base64 import b64encode

from moto.core.exceptions import JsonRESTError

from moto.ecr.responses import ECRResponse

_original = ECRResponse.get_authorization_token


def _get_authorization_token(self):
    log = os.environ.get("MOTO_ECR_CALL_LOG")
    if log:
        # `Credential=AKID/date/region/service/aws4_request` in the SigV4 header.
        authorization = self.headers.get("Authorization", "")
        access_key = authorization.split("Credential=", 1)[-1].split("/", 1)[0]
        with open(log, "a", encoding="utf-8") as calls:
            calls.write(
                json.dumps(
                    {
                        "region": self.region,
                        "account": self.current_account,
                        "access_key": access_key,
                    }
                )
                + "\n"
            )
    answer = os.environ.get("MOTO_ECR_ANSWER")
    if answer == "deny":
        raise JsonRESTError(
            "AccessDeniedException",
            f"User: arn:aws:iam::{self.current_account}:user/ci is not authorized to perform: "
            "ecr:GetAuthorizationToken on resource: * because no identity-based policy allows "
            "the ecr:GetAuthorizationToken action",
        )
    result = _original(self)
    data = result.result["authorizationData"]
    if answer == "no-data":
        data.clear()
    elif answer == "not-base64":
        data[0]["authorizationToken"] = "%%% not base64 %%%"
    elif answer == "no-colon":
        data[0]["authorizationToken"] = b64encode(b"AWS-without-a-colon").decode()
    ttl = os.environ.get("MOTO_ECR_TOKEN_TTL_SECONDS")
    if ttl is not None:
        expires = datetime.datetime.now(datetime.timezone.utc) + datetime.timedelta(
            seconds=int(ttl)
        )
        for entry in result.result["authorizationData"]:
            entry["expiresAt"] = expires
    return result


ECRResponse.get_authorization_token = _get_authorization_token
