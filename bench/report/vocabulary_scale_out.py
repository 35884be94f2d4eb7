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
              "too once a node serves; left out here. Only N = 1 is measured; a projection, "
              "not a measurement, beyond it.",
        "es": "Cuando N nodos nuevos arrancan a la vez, los bytes que cada uno toma de los "
              "servidores que todos comparten (pull de la imagen, ficheros del modelo, "
              "descarga, páginas bajo demanda) se reparten la salida de esos servidores, aquí "
              "{egress}: T(N) = fijo + máx(transferencia, N × bytes / salida), donde un nodo "
              "nuevo midió el arranque, su tiempo de transferencia y sus bytes (medianas). Con "
              "distribución entre pares dentro del clúster (Spegel, Dragonfly, Kraken) los "
              "servidores envían cada byte una vez: la última columna, un ideal. El relleno en "
              "segundo plano de mmap-lazy (el resto de su fichero) también comparte la salida "
              "una vez que el nodo sirve; aquí no se cuenta. Solo N = 1 está medido; más allá "
              "es una proyección, no una medida."},
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
    "scale_p2p_dashed": {"en": "dashed: peer-to-peer inside the cluster",
                         "es": "discontinua: entre pares dentro del clúster"},
}
