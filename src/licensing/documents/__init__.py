"""Invoice and credit note documents: the data a document shows, its PDF and its e-invoice."""
