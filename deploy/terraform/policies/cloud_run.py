"""Custom checkov policies for the Cloud Run services (see docs/operations.md).

Python rather than YAML so that they judge the configuration as written,
including values still given by variables or references inside modules."""

from checkov.common.models.enums import CheckCategories, CheckResult
from checkov.terraform.checks.resource.base_resource_check import BaseResourceCheck

PUBLIC = ("allUsers", "allAuthenticatedUsers")


def first(conf, key):
    value = conf.get(key)
    return value[0] if isinstance(value, list) and value else value


class NoPublicInvoker(BaseResourceCheck):
    """No Cloud Run service, the memory server above all, is open to everyone."""

    def __init__(self):
        super().__init__(
            name="No Cloud Run service may be invoked by allUsers or allAuthenticatedUsers",
            id="CKV_AIO_1",
            categories=(CheckCategories.IAM,),
            supported_resources=(
                "google_cloud_run_v2_service_iam_member",
                "google_cloud_run_v2_service_iam_binding",
                "google_cloud_run_service_iam_member",
                "google_cloud_run_service_iam_binding",
            ),
        )

    def scan_resource_conf(self, conf):
        members = [str(first(conf, "member") or "")]
        members += [str(m) for m in (first(conf, "members") or [])]
        if any(p in m for m in members for p in PUBLIC):
            return CheckResult.FAILED
        return CheckResult.PASSED


class OwnServiceAccount(BaseResourceCheck):
    """Every service names a service account, and never the default compute one."""

    def __init__(self):
        super().__init__(
            name="Every Cloud Run service runs as its own service account, never the default compute account",
            id="CKV_AIO_2",
            categories=(CheckCategories.IAM,),
            supported_resources=("google_cloud_run_v2_service",),
        )

    def scan_resource_conf(self, conf):
        template = first(conf, "template") or {}
        account = str(first(template, "service_account") or "")
        if not account or "-compute@developer.gserviceaccount.com" in account:
            return CheckResult.FAILED
        return CheckResult.PASSED


check_public = NoPublicInvoker()
check_account = OwnServiceAccount()
