"""The Streamlit suite: one app (``kgfusion ui``) with a home page, the three app pages, Models and Knowledge.

``app.py`` is the ``streamlit run`` entry script (st.navigation); ``pages.py`` lists the pages;
``catalog.py`` and ``kgview.py`` hold the logic the Models and Knowledge pages display.
"""
