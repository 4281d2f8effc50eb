"""The development identity provider ("BankID-simulator"): an OpenID provider for dev and demo.

Only for development: anyone can log in as anyone by typing a personnummer. `create_dev_idp`
refuses to build when the configuration says production. See docs/auth-oidc.md.
"""

from auth.devidp.app import DevIdpRefused, create_dev_idp
from auth.devidp.config import DevIdpClient, DevIdpConfig, DevPerson

__all__ = ["DevIdpClient", "DevIdpConfig", "DevIdpRefused", "DevPerson", "create_dev_idp"]
