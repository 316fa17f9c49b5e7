#!/usr/bin/env bash
# Moves sources from the single-module layout (src/main, src/test, src/spark) into the Maven modules, with git mv.
# Idempotent: run it again after merging a branch that still adds or edits files under src/ (or that makes an
# already moved test need another module); it moves only what is not where it belongs, and prints each move.
#   bash tools/split-modules.sh        (then: mvn -B -ntp -o -Pspark test)
# Rules (one place): main code by package, with per-file exceptions by the libraries a file imports
#   nn util flava checkpoint train eval download data report (and dev.mm4j itself) -> mm4j-core
#     (from the old layout: data files named *Parquet* or importing org.apache.parquet / org.apache.hadoop ->
#     mm4j-parquet, report files importing org.jfree or me.tongfei -> mm4j-cli; they now live in dev.mm4j.parquet
#     and dev.mm4j.cli.charts: one package, one module)
#   parquet -> mm4j-parquet, inference -> mm4j-inference, serve -> mm4j-serve, search -> mm4j-search,
#   cli bench -> mm4j-cli
#     (from the old layout: serve's VqaModel, Answer, ImageCache, InvalidInputException and search's Embedder,
#     ZeroShotClassifier -> mm4j-inference; they now live in dev.mm4j.inference: prediction without HTTP or Lucene)
#   src/spark/java|test: dev.mm4j.cli -> mm4j-cli/src/spark/java|test (the Spark jar's commands), rest -> mm4j-spark
# Resources follow their package (dev/mm4j/<pkg>/...); META-INF/services files follow the class they name;
# test resources go to mm4j-core (its test-jar shares them). A test goes to the lowest module that has every
# class it names (main or test classes, imported or of its own package), so tests move with their code.
set -euo pipefail
cd "$(git rev-parse --show-toplevel)"

MODULES="mm4j-core mm4j-parquet mm4j-inference mm4j-search mm4j-serve mm4j-spark mm4j-cli"
# what each module can see (itself and its dependencies), for placing tests; MODULES lists them lowest first
declare -A SEES=(
  [mm4j-core]="mm4j-core"
  [mm4j-parquet]="mm4j-core mm4j-parquet"
  [mm4j-inference]="mm4j-core mm4j-inference"
  [mm4j-search]="mm4j-core mm4j-inference mm4j-search"
  [mm4j-serve]="mm4j-core mm4j-inference mm4j-search mm4j-serve"
  [mm4j-spark]="mm4j-core mm4j-parquet mm4j-spark"
  [mm4j-cli]="mm4j-core mm4j-parquet mm4j-inference mm4j-serve mm4j-search mm4j-cli"
)
moved=0
problems=0

move() { # src dst
  local src=$1 dst=$2
  [ "$src" = "$dst" ] && return 0
  if [ -e "$dst" ]; then
    echo "split-modules: $dst already exists; $src left where it is (merge them by hand)" >&2
    problems=$((problems + 1)); return 0
  fi
  mkdir -p "$(dirname "$dst")"
  if git ls-files --error-unmatch -- "$src" >/dev/null 2>&1; then git mv -- "$src" "$dst"; else mv -- "$src" "$dst"; fi
  echo "  $src -> $dst"
  moved=$((moved + 1))
}

pkg_of() { # path -> first package below dev/mm4j ("" for dev.mm4j itself)
  local p=${1#*dev/mm4j/}
  case "$p" in */*) echo "${p%%/*}" ;; *) echo "" ;; esac
}

main_module() { # package file -> module of a main source file
  local pkg=$1 file=$2
  case "$pkg" in
    ""|nn|util|flava|checkpoint|train|eval|download) echo mm4j-core ;;
    data)
      if [[ "$(basename "$file")" == *Parquet* ]] || grep -qE '^import (static )?org\.apache\.(parquet|hadoop)\.' "$file" 2>/dev/null; then
        echo mm4j-parquet; else echo mm4j-core; fi ;;
    report)
      if grep -qE '^import (static )?(org\.jfree|me\.tongfei)\.' "$file" 2>/dev/null; then echo mm4j-cli; else echo mm4j-core; fi ;;
    serve)
      case "$(basename "$file" .java)" in VqaModel|Answer|ImageCache|InvalidInputException) echo mm4j-inference ;; *) echo mm4j-serve ;; esac ;;
    search)
      case "$(basename "$file" .java)" in Embedder|ZeroShotClassifier) echo mm4j-inference ;; *) echo mm4j-search ;; esac ;;
    inference) echo mm4j-inference ;;
    parquet) echo mm4j-parquet ;;
    spark) echo mm4j-spark ;;
    cli|bench) echo mm4j-cli ;;
    *) echo "split-modules: no module for package dev.mm4j.$pkg ($file): add a rule to tools/split-modules.sh" >&2
       problems=$((problems + 1)); echo "" ;;
  esac
}

# 1. main sources and resources of the single-module layout
while IFS= read -r f; do
  [ -n "$f" ] || continue
  rel=${f#src/main/java/}
  m=$(main_module "$(pkg_of "$f")" "$f"); [ -n "$m" ] && move "$f" "$m/src/main/java/$rel"
done < <(find src/main/java -type f 2>/dev/null | sort)
while IFS= read -r f; do
  [ -n "$f" ] || continue
  rel=${f#src/main/resources/}
  case "$rel" in
    META-INF/services/*) continue ;;  # step 3, once the classes are in place
    dev/mm4j/*/*) m=$(main_module "$(pkg_of "$f")" "$f") ;;
    *) m=mm4j-core ;;
  esac
  [ -n "$m" ] && move "$f" "$m/src/main/resources/$rel"
done < <(find src/main/resources -type f 2>/dev/null | sort)

# 2. the Spark profile's sources: its CLI commands go with the CLI (built only with -Pspark), the rest is mm4j-spark
for kind in java test; do
  while IFS= read -r f; do
    [ -n "$f" ] || continue
    rel=${f#src/spark/$kind/}
    if [ "$(pkg_of "$f")" = cli ]; then move "$f" "mm4j-cli/src/spark/$kind/$rel"
    elif [ "$kind" = java ]; then move "$f" "mm4j-spark/src/main/java/$rel"
    else move "$f" "mm4j-spark/src/test/java/$rel"; fi
  done < <(find "src/spark/$kind" -type f 2>/dev/null | sort)
done

# 3. ServiceLoader registrations go to the module of the class they name (old place or a module's)
while IFS= read -r f; do
  [ -n "$f" ] || continue
  impl=$(grep -vE '^\s*(#|$)' "$f" | head -n 1 | tr -d '[:space:]')
  src=$(find mm4j-*/src/main/java src/main/java -path "*/${impl//.//}.java" 2>/dev/null | head -n 1 || true)
  if [ -z "$src" ]; then
    echo "split-modules: $f names $impl, which is in no module" >&2; problems=$((problems + 1)); continue
  fi
  m=${src%%/*}; [ "$m" = src ] && continue
  move "$f" "$m/src/main/resources/META-INF/services/$(basename "$f")"
done < <(find src/main/resources/META-INF/services mm4j-*/src/main/resources/META-INF/services -type f 2>/dev/null | sort)

# 4. test resources: shared through mm4j-core's test-jar
while IFS= read -r f; do
  [ -n "$f" ] || continue
  move "$f" "mm4j-core/src/test/resources/${f#src/test/resources/}"
done < <(find src/test/resources -type f 2>/dev/null | sort)

# 5. tests: the lowest module that sees every class a test names; repeated until nothing moves (helpers move first)
lib_needs() { # the module a file needs for the libraries it imports
  grep -hoE '^import (static )?(org\.apache\.(parquet|hadoop|lucene|spark)|org\.jfree|me\.tongfei|io\.javalin|io\.micrometer|org\.openqa|picocli)\.' "$1" |
    sed -E 's/^import (static )?//; s/^org\.apache\.(parquet|hadoop)\..*/mm4j-parquet/; s/^org\.apache\.lucene\..*/mm4j-search/; s/^org\.apache\.spark\..*/mm4j-spark/; s/^(io\.javalin|io\.micrometer|org\.openqa)\..*/mm4j-serve/; s/^(org\.jfree|me\.tongfei|picocli)\..*/mm4j-cli/' || true
}
place_tests() {
  local table changed=0 f own pkg need m best
  # module package Class, for every main and test class now in a module (or still in src/test/java: "old")
  table=$(find mm4j-*/src/main/java mm4j-*/src/test/java src/test/java -name '*.java' 2>/dev/null | sed -n \
    's#^\(mm4j-[a-z]*\)/src/[a-z]*/java/dev/mm4j/\(.*\)\.java$#\1 \2#p; s#^src/test/java/dev/mm4j/\(.*\)\.java$#old \1#p' |
    awk '{n=split($2, a, "/"); c=a[n]; p=(n>1)?a[1]:"-"; print $1, p, c}' || true)
  while IFS= read -r f; do
    [ -n "$f" ] || continue
    pkg=$(pkg_of "$f"); [ -n "$pkg" ] || pkg="-"
    own=$(basename "$f" .java)
    case "$pkg" in -) base=mm4j-core ;; *) base=$(main_module "$pkg" /dev/null) ;; esac
    [ -n "$base" ] || continue
    need=$( { echo "$base"; lib_needs "$f"
      { grep -oE 'dev\.mm4j\.[a-z]+\.[A-Z][A-Za-z0-9_]*' "$f" | sed 's/^dev\.mm4j\.//; s/\./ /'
        grep -owE '[A-Z][A-Za-z0-9_]*' "$f" | sort -u | sed "s/^/$pkg /"; } |
        awk -v own="$own" -v tbl="$table" 'BEGIN { n = split(tbl, L, "\n"); for (i = 1; i <= n; i++) { split(L[i], t, " "); if (t[1] != "old") mod[t[2] " " t[3]] = mod[t[2] " " t[3]] " " t[1] } }
          $2 != own && ($1 " " $2) in mod { print mod[$1 " " $2] }' | tr ' ' '\n'; } | grep . | sort -u || true)
    best=""
    for m in $MODULES; do
      [ "$m" = mm4j-spark ] && continue  # spark tests live under src/spark/test (step 2)
      ok=1
      for n in $need; do case " ${SEES[$m]} " in *" $n "*) ;; *) ok=0 ;; esac; done
      [ "$ok" = 1 ] && { best=$m; break; }
    done
    [ -n "$best" ] || best=mm4j-cli
    dst="$best/src/test/java/dev/mm4j/${f#*/dev/mm4j/}"
    if [ "$f" != "$dst" ]; then move "$f" "$dst"; changed=1; fi
  done < <(find src/test/java mm4j-core/src/test/java mm4j-parquet/src/test/java mm4j-inference/src/test/java mm4j-serve/src/test/java \
             mm4j-search/src/test/java mm4j-cli/src/test/java -name '*.java' 2>/dev/null | sort)
  return $((1 - changed))
}
for round in 1 2 3 4 5; do place_tests || break; done

# what is left of the old layout must be empty folders only
left=$(find src -type f 2>/dev/null | head -n 5 || true)
if [ -n "$left" ]; then echo "split-modules: files left under src/ (no rule moved them):" >&2; echo "$left" >&2; problems=$((problems + 1)); fi
[ -d src ] && find src -depth -type d -empty -delete 2>/dev/null || true
echo "split-modules: $moved files moved, $problems problems"
[ "$problems" = 0 ]
