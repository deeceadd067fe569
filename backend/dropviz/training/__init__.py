"""The numpy training core: data, masks, forward and backward passes, updates.

Nothing in this package imports the web side (FastAPI, Starlette, uvicorn,
websockets, pydantic); it emits plain records that other packages consume.
"""
