"""`sketchseg serve`: a REST API and a drawing page around one model.

- :mod:`sketchseg.serve.app`: :func:`~sketchseg.serve.app.create_app`, the FastAPI application (body limit,
  trusted hosts, errors);
- :mod:`sketchseg.serve.protocol`: how uvicorn runs it (read deadline, keep-alive timeout, header and connection
  limits);
- :mod:`sketchseg.serve.routes`: the endpoints; :mod:`sketchseg.serve.schemas`: their bodies (pydantic);
- :mod:`sketchseg.serve.service`: the work behind them; :mod:`sketchseg.serve.batching`: concurrent requests
  batched into one model call in a worker thread (small requests first);
- :mod:`sketchseg.serve.admission`: requests admitted by their estimated memory
  (:mod:`sketchseg.serve.memory`), large ones taking turns;
- :mod:`sketchseg.serve.vocabulary`: the category limits of a request, shared with the MLflow pyfunc model (which
  also shares the decoder of the sketch, :func:`sketchseg.data.sketch.decode_sketch`);
- :mod:`sketchseg.serve.examples`: example sketches (which weights are served: :mod:`sketchseg.weights`);
- ``static/``: the drawing page (plain HTML + JavaScript).

Importing this package imports neither FastAPI nor the model.
"""
