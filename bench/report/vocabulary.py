"""Every word the report prints, in English and Spanish: one table of key -> language ->
text, read through bench.report.labels.Labels (metric names live in the metric catalogue)."""

from __future__ import annotations

from bench.report.vocabulary_scale_out import SCALE_OUT_TEXT

TEXT: dict[str, dict[str, str]] = {
    "not_measured_title": {"en": "Not measured", "es": "No medido"},
    "trial_n": {"en": "trial {n}", "es": "ensayo {n}"},
    "trials_n": {"en": "trials {n}", "es": "ensayos {n}"},
    "remarks_title": {"en": "Remarks", "es": "Observaciones"},
    "skipped_title": {"en": "Skipped (they cannot take this model)",
                      "es": "Omitidas (no pueden usar este modelo)"},
    "worst": {"en": "worst", "es": "peor"},
    "worst_over_best": {"en": "worst / best", "es": "peor / mejor"},
    "run": {"en": "run", "es": "ejecución"},
    "status_complete": {"en": "complete", "es": "completa"},
    "status_incomplete": {"en": "incomplete", "es": "incompleta"},
    "status_interrupted": {"en": "interrupted", "es": "interrumpida"},
    "status_running": {"en": "running", "es": "en curso"},
    "model_synthetic": {"en": "synthetic FIFA RandomForest", "es": "RandomForest FIFA sintético"},
    "model_user": {"en": "your model", "es": "su modelo"},
    "trees": {"en": "trees", "es": "árboles"},
    "features": {"en": "features", "es": "variables"},
    "cache_cold": {"en": "dropped before every container start and cold build",
                   "es": "vaciada antes de cada arranque y de cada build en frío"},
    "cache_warm": {"en": "warm (not dropped)", "es": "caliente (no vaciada)"},
    "best_mark_note": {"en": "best, or tied with the best within noise (medians of trials)",
                       "es": "mejor, o empatado con el mejor dentro del ruido (medianas)"},
    "cached_title": {"en": "Preparation timings reused from the cache",
                     "es": "Tiempos de preparación reutilizados de la caché"},
    # builders and conditions
    "legacy": {"en": "legacy builder", "es": "motor de build clásico"},
    "buildkit": {"en": "BuildKit", "es": "BuildKit"},
    "cold cache volume": {"en": "cold cache", "es": "caché fría"},
    "in-process": {"en": "in-process", "es": "en proceso"},
    "warm cache volume": {"en": "warm cache", "es": "caché caliente"},
    "no prefetch": {"en": "no prefetch", "es": "sin precarga"},
    "fresh node": {"en": "fresh node", "es": "nodo nuevo"},
    "service image": {"en": "service image", "es": "imagen del servicio"},
    "model image": {"en": "model image", "es": "imagen del modelo"},
    "prefetch": {"en": "prefetch", "es": "con precarga"},
    "swarm": {"en": "swarm", "es": "Docker Swarm"},
    "private caches": {"en": "private caches", "es": "cachés privadas"},
    "copy": {"en": "copy", "es": "copia"},
    "preload": {"en": "preload", "es": "precarga"},
    # counted condition parts (bench.measure.recorder.start_condition writes them)
    "replicas_n": {"en": "{n} replicas", "es": "{n} réplicas"},
    "workers_n": {"en": "{n} workers ({mode})", "es": "{n} procesos ({mode})"},
    "one_fresh_node": {"en": "1 fresh node", "es": "1 nodo nuevo"},
    "fresh_nodes_n": {"en": "{n} fresh nodes", "es": "{n} nodos nuevos"},
    "node_n": {"en": "node {n}", "es": "nodo {n}"},
    # axes
    "axis_bytes": {"en": "size", "es": "tamaño"},
    "axis_s": {"en": "time", "es": "tiempo"},
    "axis_ms": {"en": "latency", "es": "latencia"},
    "axis_ratio": {"en": "ratio", "es": "cociente"},
    "axis_since_start": {"en": "seconds since container start (fresh node: since provisioning)",
                         "es": "segundos desde el arranque (nodo nuevo: desde su preparación)"},
    "log_scale": {"en": "log scale", "es": "escala log."},
    "points_note": {"en": "bar: median; line: min–max; dots: trials",
                    "es": "barra: mediana; línea: mín–máx; puntos: ensayos"},
    # chart titles
    "chart_context": {"en": "Build context sent to the builder",
                      "es": "Contexto enviado al motor de build"},
    "chart_build_time": {"en": "Build time", "es": "Tiempo de build"},
    "chart_image": {"en": "Image size", "es": "Tamaño de la imagen"},
    "chart_startup": {"en": "Start-up", "es": "Arranque"},
    "chart_first_predict": {"en": "Latency of the first correct prediction",
                            "es": "Latencia de la primera predicción correcta"},
    "chart_memory": {"en": "Memory of the service", "es": "Memoria del servicio"},
    "chart_disk": {"en": "Host disk per strategy", "es": "Disco del host por estrategia"},
    "chart_rollout": {"en": "Rollout of a new model version",
                      "es": "Despliegue de una nueva versión del modelo"},
    "chart_timeline": {"en": "Start-up timeline (median of trials)",
                       "es": "Cronología del arranque (mediana de ensayos)"},
    # timeline segments
    "seg_pull": {"en": "image pull (fresh node)",
                 "es": "descarga de imágenes, pull (nodo nuevo)"},
    "seg_node_fetch": {"en": "model files to the node", "es": "archivos del modelo al nodo"},
    "seg_container": {"en": "container start", "es": "arranque del contenedor"},
    "seg_server": {"en": "server up", "es": "servidor arriba"},
    "seg_download": {"en": "download", "es": "descarga"},
    "seg_load": {"en": "decompress + load", "es": "descompresión + carga"},
    "seg_predict": {"en": "first prediction", "es": "primera predicción"},
    # tables and document
    "strategy": {"en": "Strategy", "es": "Estrategia"},
    "builder": {"en": "Builder", "es": "Motor de build"},
    "condition": {"en": "Condition", "es": "Condición"},
    "metric": {"en": "Metric", "es": "Métrica"},
    "table_build": {"en": "Build", "es": "Build"},
    "table_run": {"en": "Start-up and serving", "es": "Arranque y servicio"},
    "table_model": {"en": "Model file and transfer", "es": "Archivo del modelo y transferencia"},
    "cell_note": {"en": "median (min–max) over trials; builds and sizes are measured once",
                  "es": "mediana (mín–máx) de los ensayos; builds y tamaños se miden una vez"},
    "report_title": {"en": "Loading a large model into a Docker service: benchmark report",
                     "es": "Carga de un modelo grande en un servicio Docker: informe de medición"},
    "environment": {"en": "Environment", "es": "Entorno"},
    "winners": {"en": "Which strategy wins what", "es": "Qué estrategia gana en qué"},
    "claims": {"en": "Seed claims against measurements",
               "es": "Afirmaciones del documento semilla frente a lo medido"},
    "charts": {"en": "Charts", "es": "Gráficos"},
    "tables": {"en": "Comparison tables", "es": "Tablas comparativas"},
    "failures": {"en": "Failures", "es": "Fallos"},
    "claim": {"en": "Claim (seed)", "es": "Afirmación (semilla)"},
    "measured": {"en": "Measured on this run", "es": "Medido en esta ejecución"},
    "scaled": {"en": "Extrapolated to the seed's model",
               "es": "Extrapolado al modelo de la semilla"},
    "verdict": {"en": "Verdict", "es": "Veredicto"},
    "holds": {"en": "holds", "es": "se cumple"},
    "does_not_hold": {"en": "does not hold", "es": "no se cumple"},
    "depends_on_builder": {"en": "depends on builder", "es": "depende del motor de build"},
    "not_measured": {"en": "not measured in this run", "es": "no medido en esta ejecución"},
    "claim_needs": {"en": "needs a run with {flags}", "es": "requiere una ejecución con {flags}"},
    "quoted": {"en": "“{text}”", "es": "«{text}»"},
    "measured_as": {"en": "judged on: {metrics}", "es": "se juzga con: {metrics}"},
    "best": {"en": "best", "es": "mejor"},
    "runner_up": {"en": "runner-up", "es": "segunda"},
    "lowest": {"en": "lowest", "es": "menor"},
    "highest": {"en": "highest", "es": "mayor"},
    "scaling_note": {
        "en": "**Extrapolation.** This run's model is {model}; the seed's is {target}. The "
              "model's share of each quantity, measured directly (the model file's bytes in "
              "a context, the load phase's own seconds, the build time per extra context "
              "byte), is multiplied by {factor}; the rest is kept as measured.",
        "es": "**Extrapolación.** El modelo de esta ejecución tiene {model}; el de la semilla "
              "{target}. La parte de cada magnitud que corresponde al modelo, medida "
              "directamente (los bytes del fichero del modelo en un contexto, los segundos de "
              "la propia fase de carga, el tiempo de build por byte de contexto adicional), se "
              "multiplica por {factor}; el resto se mantiene tal como se midió."},
    "claims_direct": {
        "en": "This run's model ({model}) is within 10% of the seed's ({target}): the "
              "verdicts use the measured values as they are, nothing is scaled.",
        "es": "El modelo de esta ejecución ({model}) está a menos de un 10% del de la semilla "
              "({target}): los veredictos usan los valores medidos tal cual, sin escalar."},
    "interval_note": {
        "en": "Each figure is the median of the per-round values (each round pairs the two "
              "sides measured in it; builds pair by repetition), with [min – max] of those "
              "values and n pairs. With n ≥ 3 a verdict is *holds* when the median meets the "
              "seed's figure and at least ⌈2n/3⌉ rounds do too, *does not hold* when the "
              "median misses it and ⌈2n/3⌉ rounds miss it on the same side, else "
              "*inconclusive*: one outlying round decides nothing. With fewer pairs the whole "
              "interval must be on one side (a single timing counts as anything within 2× of "
              "it). In a noisy run (identical work more than 1.15× apart) timing claims are "
              "inconclusive, except those about identical work, which are judged on that "
              "noise itself.",
        "es": "Cada cifra es la mediana de los valores por ronda (cada ronda empareja los dos "
              "lados medidos en ella; los builds, por repetición), con [mín – máx] de esos "
              "valores y n pares. Con n ≥ 3 un veredicto es *se cumple* cuando la mediana "
              "alcanza la cifra de la semilla y al menos ⌈2n/3⌉ rondas también, *no se cumple* "
              "cuando la mediana no la alcanza y ⌈2n/3⌉ rondas fallan por el mismo lado, y si "
              "no, *no concluyente*: una ronda atípica no decide nada. Con menos pares todo el "
              "intervalo ha de quedar de un lado (una medición de tiempo única cuenta como "
              "cualquier valor dentro de 2× de ella). En una ejecución ruidosa (el mismo "
              "trabajo a más de 1,15× de distancia) las afirmaciones sobre tiempos no son "
              "concluyentes, salvo las que tratan del mismo trabajo, que se juzgan con ese "
              "mismo ruido."},
    # the seed's decision tree, answered (bench.report.decision)
    "decision_title": {"en": "The seed's decision tree, answered by this run",
                       "es": "El árbol de decisión de la semilla, respondido con esta ejecución"},
    "decision_intro": {
        "en": "The seed ends with a tree: “Implementar .dockerignore → ¿Build sigue lento? → "
              "Comprimir modelo + Lazy Loading → ¿Necesitas múltiples instancias? → Model "
              "Registry Externo”. Each need below is read from this run's medians with the "
              "noise rule above: the winner alone when the rule separates it from every "
              "other, else the tie; the margin is the runner-up (the best outside the tie) "
              "over the best.",
        "es": "La semilla termina con un árbol: «Implementar .dockerignore → ¿Build sigue "
              "lento? → Comprimir modelo + Lazy Loading → ¿Necesitas múltiples instancias? → "
              "Model Registry Externo». Cada necesidad se lee de las medianas de esta "
              "ejecución con la regla de ruido de arriba: el ganador solo cuando la regla lo "
              "separa de todos los demás, si no el empate; el margen es la segunda (la mejor "
              "fuera del empate) frente a la mejor."},
    "need": {"en": "Need", "es": "Necesidad"},
    "seed_answer": {"en": "The seed's answer", "es": "Respuesta de la semilla"},
    "winner_here": {"en": "Wins here", "es": "Gana aquí"},
    "margin": {"en": "By how much", "es": "Por cuánto"},
    "margin_text": {"en": "{factor} to {runner}", "es": "{factor} frente a {runner}"},
    "seed_choice_here": {"en": "The seed's answer here", "es": "La respuesta de la semilla aquí"},
    "seed_choice_wins": {"en": "{value}: in the winning group", "es": "{value}: entre las ganadoras"},
    "seed_choice_behind": {"en": "{value}: {factor} the best", "es": "{value}: {factor} la mejor"},
    "need_fast_builds": {"en": "Fast builds (“¿Build sigue lento?”)",
                         "es": "Builds rápidos («¿Build sigue lento?»)"},
    "need_fast_builds_seed": {"en": ".dockerignore; if still slow, compression + lazy loading",
                              "es": ".dockerignore; si sigue lento, compresión + lazy loading"},
    "need_fast_start": {"en": "Fast start (first correct prediction)",
                        "es": "Arranque rápido (primera predicción correcta)"},
    "need_fast_start_seed": {"en": "compression + lazy (“⚡ Performance”)",
                             "es": "compresión + lazy («⚡ Performance»)"},
    "need_low_ram": {"en": "Little RAM (PSS at rest)", "es": "Poca RAM (PSS en reposo)"},
    "need_low_ram_seed": {"en": "– (the seed does not say)", "es": "– (la semilla no lo dice)"},
    "need_little_disk": {"en": "Little local disk", "es": "Poco disco local"},
    "need_little_disk_seed": {"en": "model registry (“no ocupa espacio local”)",
                              "es": "Model Registry («no ocupa espacio local»)"},
    "need_replicas": {"en": "Many instances (“¿Necesitas múltiples instancias?”; memory of "
                            "all replicas)",
                      "es": "Múltiples instancias («¿Necesitas múltiples instancias?»; memoria "
                            "de todas las réplicas)"},
    "need_replicas_seed": {"en": "external model registry", "es": "Model Registry externo"},
    "need_fresh_nodes": {"en": "Fresh nodes (first correct prediction on a node that holds "
                               "nothing)",
                         "es": "Nodos nuevos (primera predicción correcta en un nodo vacío)"},
    "need_fresh_nodes_seed": {"en": "model registry (“escalable”)",
                              "es": "Model Registry («escalable»)"},
    "need_updates": {"en": "Frequent model updates (rollout of a new version)",
                     "es": "Actualizaciones frecuentes del modelo (despliegue de una versión "
                           "nueva)"},
    "need_updates_seed": {"en": "volumes (“actualizable sin rebuild”)",
                          "es": "volúmenes («actualizable sin rebuild»)"},
    "reading_title": {"en": "How to read this report", "es": "Cómo leer este informe"},
    "reading_text": {
        "en": "Every strategy was started {n} times (trials){warmup}. A cell gives the "
              "median and, in brackets, the min–max of those n values: the range observed, "
              "not a confidence interval. In an interleaved run round r measures trial r of "
              "every strategy in a shuffled order, so a machine that drifts during the run "
              "slows every strategy alike; the A/A table below shows how far identical work "
              "was apart (the floor), the canary how the machine moved. Two strategies differ "
              "on a timing only when the median of their per-round ratios passes max(1.10, "
              "the floor) (1.05 for memory) and at least ⌈2n/3⌉ of the n rounds pass their "
              "own round's floor in the same direction; otherwise they are a *tie within "
              "noise*, and a best is named alone only when it differs from every other. "
              "Sizes are exact and differ beyond 1%.",
        "es": "Cada estrategia se arrancó {n} veces (ensayos){warmup}. Una celda da la mediana "
              "y, entre paréntesis, el mínimo y el máximo de esos n valores: el rango "
              "observado, no un intervalo de confianza. En una ejecución intercalada la ronda "
              "r mide el ensayo r de todas las estrategias en orden barajado, de modo que si "
              "la máquina cambia de velocidad durante la ejecución afecta a todas por igual; "
              "la tabla A/A muestra cuánto se alejó el mismo trabajo (el umbral), y el "
              "canario cómo varió la máquina. Dos estrategias difieren en un tiempo solo "
              "cuando la mediana de sus cocientes por ronda supera máx.(1,10; el umbral) "
              "(1,05 en memoria) y al menos ⌈2n/3⌉ de las n rondas superan el umbral de su "
              "propia ronda en el mismo sentido; si no, hay *empate dentro del ruido*, y solo "
              "se nombra un mejor cuando difiere de todas las demás. Los tamaños son exactos "
              "y difieren a partir del 1 %."},
    "reading_warmup": {"en": ", after one warm-up start that is stored but not counted",
                       "es": ", tras un arranque de calentamiento que se guarda pero no cuenta"},
    "env_machine": {"en": "Machine", "es": "Máquina"},
    "machine_text": {"en": "{cpus} vCPU, {virt}", "es": "{cpus} vCPU, {virt}"},
    "virt_vm": {"en": "virtual machine ({kind})", "es": "máquina virtual ({kind})"},
    "virt_none": {"en": "no hypervisor detected", "es": "sin hipervisor detectado"},
    "virt_unknown": {"en": "virtualization not recorded", "es": "virtualización no registrada"},
    "env_shared": {"en": "Shared with other tenants", "es": "Compartida con otros usuarios"},
    "shared_steal": {"en": "yes: the hypervisor took up to {high} of the CPU in a round "
                           "(steal; median {median})",
                     "es": "sí: el hipervisor se llevó hasta {high} de la CPU en una ronda "
                           "(tiempo robado; mediana {median})"},
    "shared_none": {"en": "no CPU steal seen in any round",
                    "es": "no se observó tiempo robado en ninguna ronda"},
    "shared_unknown": {"en": "not measured (this run has no canary)",
                       "es": "no medido (esta ejecución no tiene canario)"},
    "env_run": {"en": "Run: start, end, duration", "es": "Ejecución: inicio, fin, duración"},
    "end_not_recorded": {"en": "end not recorded", "es": "fin no registrado"},
    "dirty_tree": {"en": "with uncommitted changes", "es": "con cambios sin confirmar"},
    "not_citable": {"en": "not citable: measured from a tree with uncommitted changes",
                    "es": "no citable: medido con cambios sin confirmar en el código"},
    "uncommitted_files": {"en": "uncommitted:", "es": "sin confirmar:"},
    "uncommitted_probably": {
        "en": "the run recorded only that the tree differed from {commit}; by git's log, "
              "probably the changes committed next: {later}",
        "es": "la ejecución solo registró que el código difería de {commit}; según el log de "
              "git, probablemente los cambios confirmados a continuación: {later}"},
    "uncommitted_unknown": {"en": "which changes was not recorded",
                            "es": "no se registró qué cambios"},
    "cold_cache_note": {
        "en": "Page cache dropped before every container start (cold reads from disk).",
        "es": "Caché de páginas vaciada antes de cada arranque (lecturas en frío del disco)."},
    "warm_cache_note": {
        "en": "Page cache warm (not dropped): claims about reading from disk are inconclusive; "
              "run with --drop-caches to judge them.",
        "es": "Caché de páginas caliente (no vaciada): las afirmaciones sobre leer del disco no "
              "son concluyentes; ejecute con --drop-caches para juzgarlas."},
    "at_seed_size_measured": {"en": "At the seed's size (measured)",
                              "es": "Al tamaño de la semilla (medido)"},
    "inconclusive": {"en": "inconclusive", "es": "no concluyente"},
    "warm_cache_reason": {"en": "warm page cache", "es": "caché de páginas caliente"},
    "single_timing_reason": {"en": "one timing per side: use --build-trials 3 or --trials 3",
                             "es": "una sola medición por lado: use --build-trials 3 o "
                                   "--trials 3"},
    "tie": {"en": "tie within noise", "es": "empate dentro del ruido"},
    "noisy_run_reason": {"en": "noisy run: identical work differed beyond 1.15×",
                         "es": "ejecución ruidosa: el mismo trabajo difirió más de 1,15×"},
    # the A/A control and the machine's canary
    "aa_title": {"en": "Noise: identical work (A/A control)",
                 "es": "Ruido: el mismo trabajo medido dos veces (control A/A)"},
    "aa_intro": {
        "en": "These strategies do the same work at start ({members}): whatever separates "
              "them is the run's noise. Medians of the measured rounds; the spread is max / "
              "min of the medians, and per round the same over the members measured in it. "
              "The floor is the spread: how far identical work was apart in this run.{control} "
              "Two strategies differ on a timing only "
              "when the median of their per-round ratios passes max(1.10, the floor) and at "
              "least ⌈2n/3⌉ of the n rounds agree on the direction (bench/results/noise.py); with "
              "fewer than 3 paired rounds, only a 2× effect decides.",
        "es": "Estas estrategias hacen el mismo trabajo al arrancar ({members}): lo que las "
              "separa es el ruido de la ejecución. Medianas de las rondas medidas; la "
              "dispersión es máx. / mín. de las medianas, y por ronda lo mismo entre las que "
              "se midieron en ella. El umbral es la dispersión: cuánto se alejó el mismo "
              "trabajo en esta ejecución.{control} Dos "
              "estrategias difieren en un tiempo solo cuando la mediana de sus cocientes por "
              "ronda supera máx.(1,10; el umbral) y al menos ⌈2n/3⌉ de las n rondas coinciden "
              "en el sentido (bench/results/noise.py); con menos de 3 rondas emparejadas solo decide "
              "un efecto de 2×."},
    "aa_control": {"en": " `{control}` is a second name for `{target}`, measured in every round; "
                         "for builds the floor is `{control}`'s own distance from `{target}`.",
                   "es": " `{control}` es otro nombre de `{target}`, medido en cada ronda; en "
                         "los builds el umbral es lo que `{control}` se alejó de `{target}`."},
    "aa_headline": {"en": "Identical work differed by {spread} in {metric} (rounds: {rounds}).",
                    "es": "El mismo trabajo difirió {spread} en {metric} (rondas: {rounds})."},
    "aa_noisy": {
        "en": "**This run is noisy**: identical work differed by {spread} in first correct "
              "prediction, more than 1.15×; widest rounds: {rounds}. Differences inside that "
              "floor are ties, and timing claims are inconclusive.",
        "es": "**Esta ejecución es ruidosa**: el mismo trabajo difirió {spread} en la primera "
              "predicción correcta, más de 1,15×; rondas más dispersas: {rounds}. Las "
              "diferencias dentro de ese umbral son empates, y las afirmaciones sobre tiempos "
              "no son concluyentes."},
    "aa_none": {"en": "This run has no identical-work group: no noise floor was measured.",
                "es": "Esta ejecución no tiene grupo de trabajo idéntico: no se midió el "
                      "umbral de ruido."},
    "spread": {"en": "spread", "es": "dispersión"},
    "per_round": {"en": "per round", "es": "por ronda"},
    "floor": {"en": "floor", "es": "umbral"},
    "round": {"en": "round", "es": "ronda"},
    "canary_title": {"en": "The machine during the run (canary)",
                     "es": "La máquina durante la ejecución (canario)"},
    "canary_intro": {
        "en": "Before every round the host hashed 64 MB in memory and read a cached 64 MB "
              "file; CPU steal and iowait are the kernel's counters over the round. The CPU "
              "task moved by {drift} across the run (max / min), the memory task (2 M random "
              "reads from a 128 MB array, also taken before every start) by {memory}. A "
              "round whose CPU or memory task took more than 1.5× its median is marked ⚠ "
              "here, in the tables' note and in the drift chart.",
        "es": "Antes de cada ronda el equipo calculó el SHA-256 de 64 MB en memoria y leyó "
              "un archivo de 64 MB en caché; la CPU robada y la espera de E/S son los "
              "contadores del kernel durante la ronda. La tarea de CPU varió {drift} a lo "
              "largo de la ejecución (máx. / mín.), la de memoria (2 M lecturas aleatorias de "
              "un vector de 128 MB, tomada también antes de cada arranque) {memory}. Una "
              "ronda cuya tarea de CPU o de memoria tardó más de 1,5× su mediana se marca ⚠ "
              "aquí, en la nota de las tablas y en el gráfico de deriva."},
    "slow_rounds_note": {"en": "⚠ slow rounds (a canary above 1.5× its median): {rounds}",
                         "es": "⚠ rondas lentas (un canario por encima de 1,5× su mediana): "
                               "{rounds}"},
    "not_in_this_run": {"en": "– (not measured in this run)",
                        "es": "– (no medida en esta ejecución)"},
    "env_order": {"en": "Order of the trials", "es": "Orden de los ensayos"},
    "order_interleaved": {"en": "interleaved: round r runs trial r of every strategy, "
                                "shuffled per round (seed {seed})",
                          "es": "intercalado: la ronda r ejecuta el ensayo r de cada "
                                "estrategia, en orden barajado por ronda (semilla {seed})"},
    "order_sequential": {"en": "sequential: every trial of one strategy, then the next "
                               "(strategy confounded with time)",
                         "es": "secuencial: todos los ensayos de una estrategia, luego la "
                               "siguiente (estrategia confundida con el tiempo)"},
    "warmup_note": {"en": "; the first start after each build is a warm-up, stored, not in "
                          "the statistics",
                    "es": "; el primer arranque tras cada build es de calentamiento: se "
                          "guarda, no entra en las estadísticas"},
    "env_duration": {"en": "Start, end and duration of the starts",
                     "es": "Inicio, fin y duración de los arranques"},
    "chart_drift": {"en": "Drift: each start against the wall clock, the canary beneath",
                    "es": "Deriva: cada arranque frente a la hora, el canario debajo"},
    "status": {"en": "Run status", "es": "Estado de la ejecución"},
    "env_engine": {"en": "Docker engine", "es": "Motor Docker"},
    "env_storage": {"en": "Storage driver", "es": "Controlador de almacenamiento"},
    "env_builders": {"en": "Builders", "es": "Motores de build"},
    "env_cpu": {"en": "CPU", "es": "CPU"},
    "env_ram": {"en": "RAM", "es": "RAM"},
    "env_disk": {"en": "Disk (total / free at start)", "es": "Disco (total / libre al inicio)"},
    "env_os": {"en": "Kernel / OS", "es": "Kernel / SO"},
    "env_base": {"en": "Base image", "es": "Imagen base"},
    "env_runtime": {"en": "Runtime image (Python and dependencies)",
                    "es": "Imagen de ejecución (Python y dependencias)"},
    "env_model": {"en": "Model", "es": "Modelo"},
    "env_page_cache": {"en": "Page cache", "es": "Caché de páginas"},
    "env_trials": {"en": "Trials per strategy", "es": "Ensayos por estrategia"},
    "env_commit": {"en": "Harness version (git commit)",
                   "es": "Versión del código de medición (commit de git)"},
    "env_started": {"en": "Started", "es": "Inicio"},
}

TEXT.update(SCALE_OUT_TEXT)
