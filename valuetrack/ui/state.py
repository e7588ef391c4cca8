"""Cached access to the library for the pages."""

from __future__ import annotations

import os

import streamlit as st

from valuetrack.access import Actor, local_actor, role_for
from valuetrack.context import Context, open_context


@st.cache_resource(show_spinner=False)
def _context(config: str | None) -> Context:
    ctx = open_context(config)
    _ = ctx.registry  # open and migrate the app database once per process
    return ctx


def context() -> Context:
    """The app's context, for the user of this session."""
    ctx = _context(os.environ.get("VALUETRACK_CONFIG"))
    return Context(ctx.settings, current_actor(ctx)) if ctx.settings.auth else ctx


def current_actor(ctx: Context) -> Actor:
    """Logged-in user under [auth] (Streamlit OIDC); the local user in open local mode."""
    if not ctx.settings.auth:
        return local_actor()
    user = getattr(st, "user", None)
    email = (user.get("email") if user is not None and getattr(user, "is_logged_in", False) else None) or "anonymous"
    return Actor(email, role_for(email, ctx.settings.auth))
