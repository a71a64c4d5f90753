"""The console's products and credit prices: made and changed through the forms, shown with the
API's figures; refusals shown with the API's code, and nothing written."""

from __future__ import annotations

from tests import factories

CREDIT_PACK = {
    "name": "10 credits", "kind": "credit_pack", "price": "100.00", "currency": "EUR", "tax_rate": "20", "credits": "10",
    "lifetime": "P1Y", "grant_on": "payment", "active": "true",
}


def test_a_credit_pack_made_through_the_form_is_the_apis_product(console, client):
    response = console("billing").submit("/console/products", CREDIT_PACK)

    assert response.status_code == 303
    product_id = response.headers["location"].removeprefix("/console/products/").removesuffix("?done=created")
    product = client.get(f"/api/v1/products/{product_id}").json()
    assert {name: product[name] for name in ("kind", "name", "price", "currency", "tax_rate", "credits", "lifetime", "grant_on", "active")} == {
        "kind": "credit_pack", "name": "10 credits", "price": "100.00", "currency": "EUR", "tax_rate": "20.00", "credits": "10.00",
        "lifetime": "P1Y", "grant_on": "payment", "active": True,
    }
    page = console("billing").get(response.headers["location"])
    assert page.status_code == 200
    assert "The product was created." in page.text
    assert "100.00 EUR" in page.text and "20.00 %" in page.text


def test_an_unticked_active_box_makes_an_inactive_product(console, client):
    # The form sends "false" before the box's "true": an unticked box is a "no", not a field left out.
    console("billing").submit("/console/products", {**CREDIT_PACK, "active": "false"})

    assert [product["active"] for product in client.get("/api/v1/products").json()["items"]] == [False]


def test_a_product_the_api_refuses_is_shown_with_its_code_and_nothing_is_written(console, client):
    response = console("billing").submit("/console/products", {**CREDIT_PACK, "price": "ten", "currency": ""})

    assert response.status_code == 422
    assert "validation_error" in response.text
    assert "currency" in response.text and "price" in response.text
    assert 'value="10 credits"' in response.text  # the form as it was filled in
    assert client.get("/api/v1/products").json()["items"] == []


def test_the_update_form_changes_the_product_as_the_apis_patch(console, client, database):
    product = factories.plain_service(database, price="310.00", name="Dedicated desk")

    response = console("billing").submit(
        f"/console/products/{product.id}", {"name": "Hot desk", "price": "150.5", "tax_rate": "21", "active": "false"}
    )

    assert response.status_code == 303
    assert response.headers["location"] == f"/console/products/{product.id}?done=updated"
    shown = client.get(f"/api/v1/products/{product.id}").json()
    assert (shown["name"], shown["price"], shown["tax_rate"], shown["active"]) == ("Hot desk", "150.50", "21.00", False)
    page = console("billing").get(response.headers["location"])
    assert "The product was updated." in page.text and "150.50 EUR" in page.text


def test_the_products_list_shows_the_apis_prices_and_pages(console, database):
    for number in range(52):
        factories.plain_service(database, price=f"{number}.5", name=f"Desk {number:02d}")

    first = console("read").get("/console/products")

    assert first.status_code == 200
    assert "Desk 00" in first.text and "0.50 EUR" in first.text and "Desk 50" not in first.text
    assert 'rel="next"' in first.text
    following = first.text.split('rel="next"')[0].rsplit('href="', 1)[1].split('"')[0].replace("&amp;", "&")
    second = console("read").get(following)
    assert "Desk 50" in second.text and "Desk 51" in second.text and "51.50 EUR" in second.text


def test_a_credit_price_made_through_the_form_is_the_apis(console, client):
    response = console("billing").submit("/console/credit-prices", {"name": "Meeting room (per hour)", "credits_per_unit": "2.5"})

    assert response.status_code == 303
    assert response.headers["location"] == "/console/credit-prices?done=credit_price"
    assert [(price["name"], price["credits_per_unit"]) for price in client.get("/api/v1/credit-prices").json()["items"]] == [
        ("Meeting room (per hour)", "2.5")
    ]
    page = console("billing").get(response.headers["location"])
    assert "The credit price was created." in page.text and "Meeting room (per hour)" in page.text


def test_a_refused_credit_price_writes_nothing(console, client):
    response = console("billing").submit("/console/credit-prices", {"name": "Meeting room", "credits_per_unit": "-1"})

    assert response.status_code == 422
    assert "validation_error" in response.text and "credits_per_unit" in response.text
    assert client.get("/api/v1/credit-prices").json()["items"] == []


def test_a_read_role_sees_the_catalog_without_forms_and_may_not_post(console, client, database):
    product = factories.plain_service(database)
    reader = console("read")

    for path in ("/console/products", f"/console/products/{product.id}", "/console/credit-prices"):
        page = reader.get(path)
        assert page.status_code == 200
        assert 'method="post"' not in page.text.replace('action="/console/logout"', "").split("</header>", 1)[1]
    assert reader.submit("/console/products", CREDIT_PACK).status_code == 403
    assert reader.submit("/console/credit-prices", {"name": "Room", "credits_per_unit": "2"}).status_code == 403
    assert reader.submit(f"/console/products/{product.id}", {"name": "Renamed"}).status_code == 403
    assert [item["name"] for item in client.get("/api/v1/products").json()["items"]] == ["Dedicated desk"]
    assert client.get("/api/v1/credit-prices").json()["items"] == []


def test_a_post_without_the_csrf_token_is_refused_and_writes_nothing(console, client):
    response = console("billing").post("/console/products", data=CREDIT_PACK)

    assert response.status_code == 403
    assert client.get("/api/v1/products").json()["items"] == []
