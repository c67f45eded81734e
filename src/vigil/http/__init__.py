"""The HTTP side: the API (one router per area), the page, and serving it with uvicorn.

`app.create_app` builds the FastAPI app from the running parts (`parts.Parts`); `health`,
`series`, `events` and `page` are the routers, `listing` does their filtering and paging,
`models` are the answers, `params` the query parameters; `web/` holds the page's files,
`protocol` is the HTTP/1.1 protocol uvicorn serves them with (a deadline on reading each
request) and `server` runs uvicorn in the foreground.
"""

from __future__ import annotations

from vigil.http.app import create_app
from vigil.http.parts import Parts

__all__ = ["Parts", "create_app"]
