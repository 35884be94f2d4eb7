"""The words of the report's scale-out section (bench/report/scale_out.py), in English and
Spanish: part of the one table bench/report/vocabulary.py holds (kept apart for its length)."""

from __future__ import annotations

SCALE_OUT_TEXT: dict[str, dict[str, str]] = {
    "scale_out_title": {"en": "Scale-out, projected from one fresh node",
                        "es": "Escalado, proyectado desde un nodo nuevo"},
    "scale_out_text": {
        "en": "When N fresh nodes start at once, the bytes each takes from the servers every "
              "node shares (image pull, model files, download, demand pages) share those "
              "servers' egress, here {egress}: T(N) = fixed + max(transfer, N × bytes / "
              "egress), where one fresh node measured the start, its transfer time and its "
              "bytes (medians). With peer-to-peer distribution inside the cluster (Spegel, "
              "Dragonfly, Kraken) the servers send each byte about once: the last column, an "
              "ideal. mmap-lazy's background fill (the rest of its file) shares the egress "
              "too once a node serves; left out here. Made from one node's starts: a "
              "projection, not a measurement, beyond the nodes that ran.",
        "es": "Cuando N nodos nuevos arrancan a la vez, los bytes que cada uno toma de los "
              "servidores que todos comparten (pull de la imagen, ficheros del modelo, "
              "descarga, páginas bajo demanda) se reparten la salida de esos servidores, aquí "
              "{egress}: T(N) = fijo + máx(transferencia, N × bytes / salida), donde un nodo "
              "nuevo midió el arranque, su tiempo de transferencia y sus bytes (medianas). Con "
              "distribución entre pares dentro del clúster (Spegel, Dragonfly, Kraken) los "
              "servidores envían cada byte una vez: la última columna, un ideal. El relleno en "
              "segundo plano de mmap-lazy (el resto de su fichero) también comparte la salida "
              "una vez que el nodo sirve; aquí no se cuenta. Hecha desde los arranques de un "
              "nodo: una proyección, no una medida, más allá de los nodos que corrieron."},
    "scale_bytes_per_node": {"en": "bytes per node from the servers",
                             "es": "bytes por nodo desde los servidores"},
    "scale_nodes_n": {"en": "all serving, N = {n}", "es": "todos sirven, N = {n}"},
    "scale_p2p_n": {"en": "N = {n}, peer-to-peer", "es": "N = {n}, entre pares"},
    "scale_axis_nodes": {"en": "nodes started at once", "es": "nodos arrancados a la vez"},
    "scale_axis_seconds": {"en": "until the last node serves",
                           "es": "hasta que el último nodo sirve"},
    "scale_chart_title": {"en": "Scale-out, projected: servers' egress {egress}",
                          "es": "Escalado, proyectado: salida de los servidores {egress}"},
    "chart_scale_out": {"en": "Scale-out, projected from one fresh node",
                        "es": "Escalado, proyectado desde un nodo nuevo"},
    "scale_check_title": {"en": "Scale-out, measured on several nodes",
                          "es": "Escalado, medido en varios nodos"},
    "scale_check_text": {
        "en": "Every trial started each strategy on 1, 2, ... nodes at once, each node an "
              "engine of its own on its own link, the servers' egress {egress}. Measured: "
              "the last node's first correct prediction (all_ready_s, median of the trials). "
              "Projected: T(N) above, from this run's one-node starts at that egress. Its "
              "error beyond one node: {median} median, {worst} at worst.",
        "es": "Cada prueba arrancó cada estrategia en 1, 2, ... nodos a la vez, cada nodo un "
              "motor propio con su propio enlace, la salida de los servidores {egress}. "
              "Medido: la primera predicción correcta del último nodo (all_ready_s, mediana "
              "de las pruebas). Proyectado: T(N) de arriba, desde los arranques de un nodo de "
              "esta ejecución a esa salida. Su error más allá de un nodo: {median} de mediana, "
              "{worst} en el peor caso."},
    "scale_fit_text": {
        "en": "A line through the measured points, all serving = fixed + per node × N (least "
              "squares): what one more node cost in this run, the servers' egress and the "
              "nodes' shared CPU and disk together (the nodes of this run are engines on one "
              "host, so what they share beyond the servers shows here, not in the "
              "projection). The effective egress is the one that would explain the slope "
              "alone: a node's bytes over its per-node seconds.",
        "es": "Una recta por los puntos medidos, todos sirven = fijo + por nodo × N (mínimos "
              "cuadrados): lo que costó un nodo más en esta ejecución, la salida de los "
              "servidores y la CPU y el disco que los nodos comparten a la vez (los nodos de "
              "esta ejecución son motores en un mismo host, así que lo que comparten además "
              "de los servidores se ve aquí, no en la proyección). La salida efectiva es la "
              "que explicaría la pendiente por sí sola: los bytes de un nodo entre sus "
              "segundos por nodo."},
    "scale_fit_fixed": {"en": "fixed", "es": "fijo"},
    "scale_fit_per_node": {"en": "per node", "es": "por nodo"},
    "scale_fit_egress": {"en": "effective egress", "es": "salida efectiva"},
    "scale_fit_error": {"en": "worst error of the line", "es": "peor error de la recta"},
    "scale_measured": {"en": "all serving, measured", "es": "todos sirven, medido"},
    "scale_projected": {"en": "projected", "es": "proyectado"},
    "scale_error": {"en": "projected / measured − 1", "es": "proyectado / medido − 1"},
    "scale_p2p_dashed": {"en": "dashed: peer-to-peer inside the cluster",
                         "es": "discontinua: entre pares dentro del clúster"},
}
