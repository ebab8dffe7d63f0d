"""``loyalmail domain …``: a merchant's sending domains from the command line, for operators
(the same services as the settings page and the API)."""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from types import ModuleType
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer

if TYPE_CHECKING:  # for the annotations only: see _run on why nothing of it is imported here
    from accounts.domains.schemas import SendingDomainOut

T = TypeVar("T")

domain_app = typer.Typer(
    no_args_is_help=True, help="Sending domains: DNS records, checks, key rotation."
)


def _run(merchant: str, work: Callable[[ModuleType, int], Awaitable[T]]) -> T:
    """Run ``work`` with the domain services and the merchant's id; a domain error is
    printed, not a traceback."""
    # Imported here, not at the top: the ``loyalmail`` command imports this module to list
    # its commands, and these pull in the ORM, cryptography and dnspython (a third of a
    # second) that ``loyalmail --help`` and every other command do without.
    from accounts import domains
    from accounts import services as accounts
    from loyalmail.errors import LoyalmailError

    async def go() -> T:
        shop = await accounts.get_merchant_by_slug(merchant)
        return await work(domains, shop.id)

    try:
        return asyncio.run(go())
    except LoyalmailError as exc:
        typer.secho(exc.message, fg=typer.colors.RED, err=True)
        raise typer.Exit(code=1) from exc


def _show(domain: SendingDomainOut) -> None:
    checks = {c.name + c.kind: c.status for c in domain.checks}
    typer.echo(f"{domain.domain} (id {domain.id}): {domain.status}")
    for record in domain.records:
        state = checks.get(record.name + record.kind, "not checked")
        need = "required" if record.required else "recommended"
        typer.echo(f"  {record.kind:<9} {record.type} {record.name}  [{state}, {need}]")
        typer.echo(f"            {record.value}")


Merchant = Annotated[str, typer.Option(help="The merchant's slug")]


@domain_app.command("list")
def domain_list(merchant: Merchant) -> None:
    """The merchant's sending domains with their records and the last check."""
    for domain in _run(merchant, lambda domains, shop: domains.list_domains(shop)):
        _show(domain)


@domain_app.command("add")
def domain_add(merchant: Merchant, domain: Annotated[str, typer.Argument()]) -> None:
    """Add a domain (a DKIM key pair is made) and print the records to publish."""
    _show(_run(merchant, lambda domains, shop: domains.add_domain(shop, domain)))


@domain_app.command("check")
def domain_check(merchant: Merchant, domain_id: Annotated[int, typer.Argument()]) -> None:
    """Look the records up in DNS now and print what was found."""
    _show(_run(merchant, lambda domains, shop: domains.check_domain(shop, domain_id)))


@domain_app.command("rotate")
def domain_rotate(merchant: Merchant, domain_id: Annotated[int, typer.Argument()]) -> None:
    """Make the next key; signing switches to it once a check finds its record."""
    _show(_run(merchant, lambda domains, shop: domains.rotate_key(shop, domain_id)))


@domain_app.command("remove")
def domain_remove(merchant: Merchant, domain_id: Annotated[int, typer.Argument()]) -> None:
    """Remove a domain and its keys; the merchant's mail goes out from the fallback again."""
    _run(merchant, lambda domains, shop: domains.remove_domain(shop, domain_id))
    typer.echo("Removed.")
