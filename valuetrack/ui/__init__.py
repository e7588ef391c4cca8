"""Small helpers shared by the Streamlit pages: cached stores, the current user, formatting.

Only this package and the pages import streamlit.
"""
