"""Sending domains over the JSON API: list, add, check, rotate the key, remove."""

from __future__ import annotations

from litestar import Controller, Request, delete, get, post
from litestar.params import FromPath, JSONBody

from accounts import domains
from accounts.controllers import require_owner_or_token
from accounts.domains.schemas import SendingDomainCreate, SendingDomainOut
from loyalmail.auth import principal_of


class SendingDomainApiController(Controller):
    path = "/api/sending-domains"
    tags = ["sending domains"]

    @get("/")
    async def list_domains(self, request: Request) -> list[SendingDomainOut]:
        return await domains.list_domains(principal_of(request).merchant_id)

    @post("/")
    async def add_domain(
        self, request: Request, data: JSONBody[SendingDomainCreate]
    ) -> SendingDomainOut:
        """Add a domain; a DKIM key pair is made for it. Publish its ``records``, then check."""
        require_owner_or_token(request)
        return await domains.add_domain(principal_of(request).merchant_id, data.domain)

    @get("/{domain_id:int}")
    async def get_domain(self, request: Request, domain_id: FromPath[int]) -> SendingDomainOut:
        return await domains.get_domain(principal_of(request).merchant_id, domain_id)

    @post("/{domain_id:int}/check", status_code=200)
    async def check_domain(self, request: Request, domain_id: FromPath[int]) -> SendingDomainOut:
        """Look the records up in DNS now (the scheduler does it on its own, too)."""
        require_owner_or_token(request)
        return await domains.check_domain(principal_of(request).merchant_id, domain_id)

    @post("/{domain_id:int}/rotate", status_code=200)
    async def rotate_key(self, request: Request, domain_id: FromPath[int]) -> SendingDomainOut:
        """Make a new key; signing switches to it once a check finds its record."""
        require_owner_or_token(request)
        return await domains.rotate_key(principal_of(request).merchant_id, domain_id)

    @delete("/{domain_id:int}")
    async def remove_domain(self, request: Request, domain_id: FromPath[int]) -> None:
        require_owner_or_token(request)
        await domains.remove_domain(principal_of(request).merchant_id, domain_id)
