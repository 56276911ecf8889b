"""moto's Lambda (PyPI `moto[server]`, 5.2.5) made to behave as AWS does where `lambda-image
deploy` depends on it, plus knobs that make it slow, failing or refusing, and a log of every
call. Importing this module applies the patches; `moto_server.py` imports it and starts the
server.

What AWS does and moto 5.2.5 does not, patched here:

* UpdateFunctionCode applies `Architectures` (moto ignores it).
* An `ImageUri` given by digest (`HOST[:PORT]/REPO@sha256:HEX`): `CodeSha256` is HEX (moto
  hashes the URI string) and `Code.ResolvedImageUri` is the URI itself (moto cuts the URI at
  its first `:`, the port's). By tag, the resolved URI keeps the host's port.
* CreateFunction takes a function ARN as `FunctionName` (moto would name the function after the
  whole ARN).
* UpdateFunctionCode with a package of the other type (a `ZipFile`/`S3Bucket` for an Image
  function, an `ImageUri` for a Zip function) is an InvalidParameterValueException.
* GetLayerVersionByArn (`GET /2018-10-31/layers?find=LayerVersion&Arn=ARN`) is answered (moto
  5.2.5 does not implement it): the layer version as GetLayerVersion gives it, or a 404
  ResourceNotFoundException for an ARN moto does not hold. Its `Content.Location` is moto's
  `s3://` unless `MOTO_LAMBDA_LAYER_LOCATION` says otherwise (below).
* While a create or update is in progress (see `MOTO_LAMBDA_PENDING_POLLS`), another
  UpdateFunctionCode, UpdateFunctionConfiguration or PublishVersion of that function is a
  ResourceConflictException (409) "An update is in progress for resource: ARN", as AWS answers.

Knobs, each an environment variable of the server, read at every request; the JSON file named
by `MOTO_LAMBDA_KNOBS_FILE`, when it exists, overrides them (an object with the same names as
keys), so a test can change them between two commands:

* `MOTO_LAMBDA_PENDING_POLLS=N`: after each CreateFunction, UpdateFunctionCode and
  UpdateFunctionConfiguration, the function's own answer and the next N GetFunction or
  GetFunctionConfiguration answers say `State` Pending and `LastUpdateStatus` InProgress (after
  a create) or `LastUpdateStatus` InProgress (after an update); then Active/Successful.
* `MOTO_LAMBDA_FAIL_REASON=TEXT`: a create or update started while this is set ends (after the
  pending polls) `Failed`: `LastUpdateStatus` Failed with `LastUpdateStatusReason` TEXT and
  `LastUpdateStatusReasonCode` `MOTO_LAMBDA_FAIL_CODE` (default `InvalidImage`); after a create,
  also `State` Failed with `StateReason` TEXT and `StateReasonCode` the same code.
* `MOTO_LAMBDA_CODE_SHA256=TEXT`: every answer gives `CodeSha256` TEXT, as if another deploy
  had changed the function meanwhile.
* `MOTO_LAMBDA_DENY=OP[=ACTION],...`: Lambda operations (e.g. `UpdateFunctionCode`,
  `CreateFunction=iam:PassRole`) answered 403 AccessDeniedException worded as AWS words it:
  "User: arn:aws:iam::ACCOUNT:user/ci is not authorized to perform: ACTION on resource: ARN
  because no identity-based policy allows the ACTION action"; ACTION defaults to `lambda:OP`.

* `MOTO_LAMBDA_LAYER_LOCATION=URL`: GetLayerVersionByArn gives `Content.Location`
  `URL/NAME/VERSION.zip?X-Amz-Signature=...` (a presigned-URL-like query), so the download goes
  to a server the test runs at URL instead of S3.

`MOTO_CALL_LOG=FILE`: one JSON line per request of any service, appended before it is served:
`{"service", "operation", "region", "method", "path"}` (for S3 the operation is the HTTP method;
a denied Lambda call also has `"denied": ACTION`).
"""

import json
import os
import threading
from urllib.parse import urlparse

from moto.awslambda.exceptions import LambdaClientError
from moto.awslambda.models import LambdaBackend, LambdaFunction
from moto.awslambda.responses import LambdaResponse
from moto.core.responses import BaseResponse
from moto.s3.responses import S3Response

_current = threading.local()
_log_lock = threading.Lock()

ACCOUNT = "123456789012"


def knob(name, default=None):
    """The knob `name`: the knob file's value, else the environment's, else `default`."""
    path = os.environ.get("MOTO_LAMBDA_KNOBS_FILE")
    if path and os.path.exists(path):
        with open(path, encoding="utf-8") as file:
            text = file.read()
        if text.strip():
            knobs = json.loads(text)
            if name in knobs:
                value = knobs[name]
                return None if value is None else str(value)
    return os.environ.get(name, default)


def log_call(entry):
    path = os.environ.get("MOTO_CALL_LOG")
    if not path:
        return
    with _log_lock, open(path, "a", encoding="utf-8") as calls:
        calls.write(json.dumps(entry) + "\n")


class _Refusal(LambdaClientError):
    def __init__(self, code, error, message):
        super().__init__(error, message)
        self.code = code


# --- the call log, and the current Lambda operation for the patches below ---

_original_call_action = BaseResponse.call_action


def _call_action(self):
    try:
        operation = self._get_action()
    except Exception:  # noqa: BLE001 - an unknown route still gets logged
        operation = None
    log_call(
        {
            "service": "lambda" if self.service_name == "awslambda" else self.service_name,
            "operation": operation,
            "region": self.region,
            "method": self.method,
            "path": self.path,
        }
    )
    _current.operation = operation
    try:
        return _original_call_action(self)
    finally:
        _current.operation = None


BaseResponse.call_action = _call_action


def _logging(original):
    def respond(self, request, full_url, headers):
        log_call(
            {
                "service": "s3",
                "operation": request.method,
                "region": None,
                "method": request.method,
                "path": urlparse(full_url).path,
            }
        )
        return original(self, request, full_url, headers)

    return respond


S3Response.key_response = _logging(S3Response.key_response)
S3Response.bucket_response = _logging(S3Response.bucket_response)


# --- refusals: AccessDenied, conflicts while in progress ---


def _denied_action(operation):
    for entry in (knob("MOTO_LAMBDA_DENY") or "").split(","):
        name, _, action = entry.strip().partition("=")
        if name and name == operation:
            return action or f"lambda:{operation}"
    return None


def _function_arn(self):
    parts = self.path.split("/functions/", 1)
    name = parts[1].split("/", 1)[0] if len(parts) == 2 else None
    if name is None:
        try:
            name = json.loads(self.body).get("FunctionName")
        except (ValueError, AttributeError):
            name = None
    if name and name.startswith("arn:"):
        return name
    return f"arn:aws:lambda:{self.region}:{ACCOUNT}:function:{name or '*'}"


_original_lambda_call_action = LambdaResponse.call_action


def _lambda_call_action(self):
    operation = self._get_action()
    action = _denied_action(operation)
    if action:
        resource = _function_arn(self)
        if action == "iam:PassRole":
            try:
                resource = json.loads(self.body).get("Role", resource)
            except ValueError:
                pass
        message = (
            f"User: arn:aws:iam::{ACCOUNT}:user/ci is not authorized to perform: {action} on "
            f"resource: {resource} because no identity-based policy allows the {action} action"
        )
        log_call(
            {
                "service": "lambda",
                "operation": operation,
                "region": self.region,
                "method": self.method,
                "path": self.path,
                "denied": action,
            }
        )
        body = json.dumps({"Type": "User", "Message": message})
        headers = {"x-amzn-ErrorType": "AccessDeniedException", "Content-Type": "application/json"}
        return 403, headers, body
    return _original_lambda_call_action(self)


LambdaResponse.call_action = _lambda_call_action


def _conflict_check(original):
    def respond(self):
        name = self.path.split("/functions/", 1)[1].split("/", 1)[0]
        try:
            function = self.backend.get_function(name, None)
        except Exception:  # noqa: BLE001 - moto's own answer for a missing function
            function = None
        if function is not None and getattr(function, "_polls_left", 0) > 0:
            raise _Refusal(
                409,
                "ResourceConflictException",
                "The operation cannot be performed at this time. An update is in progress "
                f"for resource: {function.function_arn}",
            )
        return original(self)

    return respond


for _name in ("update_function_code", "update_function_configuration", "publish_version"):
    setattr(LambdaResponse, _name, _conflict_check(getattr(LambdaResponse, _name)))


# --- states: pending polls, failures ---


def _start_change(function, created):
    function._polls_left = int(knob("MOTO_LAMBDA_PENDING_POLLS", "0") or 0)
    function._created_last = created
    reason = knob("MOTO_LAMBDA_FAIL_REASON")
    function._fail = (reason, knob("MOTO_LAMBDA_FAIL_CODE", "InvalidImage")) if reason else None


_original_get_configuration = LambdaFunction.get_configuration


def _get_configuration(self, on_create=False):
    config = _original_get_configuration(self, on_create)
    code_sha256 = knob("MOTO_LAMBDA_CODE_SHA256")
    if code_sha256:
        config["CodeSha256"] = code_sha256
    operation = getattr(_current, "operation", None)
    polls = getattr(self, "_polls_left", 0)
    created = getattr(self, "_created_last", False)
    if polls > 0 and operation in ("GetFunction", "GetFunctionConfiguration"):
        self._polls_left = polls - 1
    if polls > 0 and operation != "PublishVersion":
        if created:
            config["State"] = "Pending"
            config["StateReason"] = "The function is being created."
            config["StateReasonCode"] = "Creating"
            config["LastUpdateStatus"] = "InProgress"
        else:
            config["LastUpdateStatus"] = "InProgress"
            config["LastUpdateStatusReason"] = "The function is being updated."
            config["LastUpdateStatusReasonCode"] = "Updating"
        return config
    fail = getattr(self, "_fail", None)
    if fail:
        reason, code = fail
        if created:
            config["State"] = "Failed"
            config["StateReason"] = reason
            config["StateReasonCode"] = code
        config["LastUpdateStatus"] = "Failed"
        config["LastUpdateStatusReason"] = reason
        config["LastUpdateStatusReasonCode"] = code
    return config


LambdaFunction.get_configuration = _get_configuration

_original_create_function = LambdaBackend.create_function


def _create_function(self, spec):
    name = spec.get("FunctionName") or ""
    if ":function:" in name:
        # AWS takes a function ARN as the name to create; moto would store the ARN as the name.
        spec = dict(spec, FunctionName=name.split(":function:", 1)[1].split(":", 1)[0])
    function = _original_create_function(self, spec)
    latest = self.get_function(spec["FunctionName"], None)
    _start_change(latest, created=True)
    if function is not latest:
        _start_change(function, created=True)
    return function


LambdaBackend.create_function = _create_function

_original_update_configuration = LambdaFunction.update_configuration


def _update_configuration(self, config_updates):
    _start_change(self, created=False)
    return _original_update_configuration(self, config_updates)


LambdaFunction.update_configuration = _update_configuration


# --- UpdateFunctionCode: Architectures, package type, image digests ---

_original_update_function_code = LambdaFunction.update_function_code


def _update_function_code(self, updated_spec):
    image = "ImageUri" in updated_spec
    if self.package_type == "Image" and not image:
        raise _Refusal(
            400,
            "InvalidParameterValueException",
            "Please provide ImageUri when updating a function with packageType Image.",
        )
    if self.package_type != "Image" and image:
        raise _Refusal(
            400,
            "InvalidParameterValueException",
            "Please don't provide ImageUri when updating a function with packageType Zip.",
        )
    if updated_spec.get("Architectures"):
        self.architectures = updated_spec["Architectures"]
    _start_change(self, created=False)
    return _original_update_function_code(self, updated_spec)


LambdaFunction.update_function_code = _update_function_code

_original_set_function_code = LambdaFunction._set_function_code


def _set_function_code(self, updated_spec):
    _original_set_function_code(self, updated_spec)
    uri = updated_spec.get("ImageUri")
    if uri and "@sha256:" in uri and not updated_spec.get("DryRun"):
        self.code_sha_256 = uri.rsplit("@sha256:", 1)[1]


LambdaFunction._set_function_code = _set_function_code

_original_get_code = LambdaFunction.get_code


def _get_code(self):
    answer = _original_get_code(self)
    uri = self.code.get("ImageUri")
    if uri and "Code" in answer:
        if "@sha256:" in uri:
            resolved = uri
        else:
            repository, _, last = uri.rpartition(":")
            if "/" in last or not repository:
                repository = uri
            resolved = f"{repository}@sha256:{self.code_sha_256}"
        answer["Code"]["ResolvedImageUri"] = resolved
    return answer


LambdaFunction.get_code = _get_code


# --- GetLayerVersionByArn, which moto 5.2.5 lacks ---

LAYER_SIGNATURE = "X-Amz-Signature=0123456789abcdef-test-signature"


def _get_layer_version_by_arn(self):
    arn = (self.querystring.get("Arn") or [None])[0]
    layer = None
    if arn:
        try:
            layer = self.backend.layers_versions_by_arn(arn)
        except Exception:  # noqa: BLE001 - a malformed ARN is not found, as AWS answers
            layer = None
    if layer is None:
        raise _Refusal(404, "ResourceNotFoundException", f"Layer version {arn} does not exist.")
    answer = layer.get_layer_version()
    location = knob("MOTO_LAMBDA_LAYER_LOCATION")
    if location:
        answer["Content"]["Location"] = (
            f"{location.rstrip('/')}/{layer.name}/{layer.version}.zip?{LAYER_SIGNATURE}"
        )
    return 200, {}, json.dumps(answer)


LambdaResponse.get_layer_version_by_arn = _get_layer_version_by_arn
