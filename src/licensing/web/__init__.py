"""In the browser: the operator console (``/console``) and the member portal (``/portal``).

Server-rendered HTML (Jinja2) with HTMX for partial updates, its assets served by the
application. The pages hold no business rule: what they show comes from the same functions the
HTTP API answers with (``web.calls``), and what they change goes through the same use cases, so
every figure on a page is the API's figure. Who may do what is the API's roles.
"""


def routers() -> list:
    """Every page router, the console's first."""
    from licensing.web import console, console_accounts, console_admin, console_catalog, console_invoices, console_licences, portal

    return [module.router for module in (console, console_accounts, console_licences, console_invoices, console_catalog, console_admin, portal)]
