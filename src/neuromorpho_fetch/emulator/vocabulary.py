"""The catalogue's fixed tables: the API's field names and record key order, and the vocabularies synthetic
groups draw from (species, regions, cell types, stains, software, archives and name styles).

Nothing here depends on a seed; :mod:`.generation` draws from these tables, :mod:`.index` reads the field
tables. Shares and counts cite the 2026 recorded responses (E) or say "inferred".
"""

from __future__ import annotations

from dataclasses import dataclass

from . import recorded

#: The 44 names of ``GET /api/neuron/fields``, in the server's order (reference A7).
FIELDS: tuple[str, ...] = (
    "neuron_id", "neuron_name", "archive", "age_scale", "gender", "reference_pmid", "reference_doi",
    "note", "age_classification", "brain_region", "cell_type", "species", "strain", "scientific_name",
    "stain", "experiment_condition", "protocol", "slicing_direction", "reconstruction_software",
    "objective_type", "original_format", "domain", "attributes", "magnification", "upload_date",
    "deposition_date", "shrinkage_reported", "shrinkage_corrected", "reported_value", "reported_xy",
    "reported_z", "corrected_value", "corrected_xy", "corrected_z", "soma_surface", "surface", "volume",
    "slicing_thickness", "min_age", "max_age", "min_weight", "max_weight", "png_url", "Physical_Integrity",
)  # fmt: skip

#: Key order of a served record (that of the real example record, reference A7).
_RECORD_KEYS: tuple[str, ...] = (
    "neuron_id", "neuron_name", "archive", "note", "age_scale", "gender", "age_classification",
    "brain_region", "cell_type", "species", "strain", "scientific_name", "stain", "experiment_condition",
    "protocol", "slicing_direction", "reconstruction_software", "objective_type", "original_format",
    "domain", "attributes", "magnification", "upload_date", "deposition_date", "shrinkage_reported",
    "shrinkage_corrected", "reported_value", "reported_xy", "reported_z", "corrected_value", "corrected_xy",
    "corrected_z", "soma_surface", "surface", "volume", "slicing_thickness", "min_age", "max_age",
    "min_weight", "max_weight", "png_url", "reference_pmid", "reference_doi", "physical_Integrity",
)  # fmt: skip

LIST_FIELDS = frozenset(
    {"brain_region", "cell_type", "experiment_condition", "reference_pmid", "reference_doi"}
)
KINDS = ("CNG", "source", "remaining-issues", "standardization-log", "images")

#: Names added by ``hostile_names=True``: each tries to escape the download directory or confuse a path.
HOSTILE_NAMES: tuple[str, ...] = (
    "../../escape", "sub/dir/name", "..", ".hidden", "back\\slash", "C:\\win", "%2e%2e%2fescape",
    "long_" + "n" * 295,
)  # fmt: skip

#: A field's value: a string, a list field's elements, or null.
Value = str | tuple[str, ...] | None

_FOLDER_KIND = {
    "CNG version": "CNG",
    "Source-Version": "source",
    "Remaining issues": "remaining-issues",
    "Standardization log": "standardization-log",
}
_COMPUTED = ("soma_surface", "surface", "volume")
_PER_NEURON = frozenset({"neuron_id", "neuron_name", "png_url", *_COMPUTED})  # not held by groups
#: Fields whose value may differ inside a group, and which random byte column picks it. Fields sharing
#: a key vary together (an age range and its classification).
_VARIANT_KEY = {
    "brain_region": "region", "cell_type": "region", "experiment_condition": "cond",
    "original_format": "format", "physical_Integrity": "integrity", "domain": "domain",
    "age_classification": "age", "min_age": "age", "max_age": "age", "min_weight": "age", "max_weight": "age",
}  # fmt: skip
#: The clearly synthetic archives: every name in them is awkward (spaces, parentheses, ``+``, ``#``,
#: ``%``, dots, non-ASCII letters) and every CNG header has a Latin-1 line, to test a client on what the
#: recorded archives do not show (issue 18: they keep the recorded archives looking recorded).
SYNTHETIC_ARCHIVES = frozenset({"Synthetic_Awkward"})
_SPECIAL_NAMES = (
    "Zellé {k} (b)#2", "n+{k}%x.v2", "cell {k} (apical)", "Ñeurona_{k}.tif", "slice#{k} 50%",
    "Pyr.{k}.a+b", "Körnerzelle {k}", "neuron({k})_übung", "{k}% stain+1", "jäger #{k}",
)  # fmt: skip


# --- vocabularies -------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class _Species:
    species: str
    scientific: str
    strains: tuple[str, ...]
    regions: str  # key of _REGIONS
    cells: str  # key of _CELLS
    age_scale: str


_REGIONS: dict[str, tuple[tuple[str, ...], ...]] = {
    "mammal": (
        ("neocortex", "prefrontal", "layer 3"), ("neocortex", "somatosensory", "layer 5"),
        ("neocortex", "occipital", "layer 6"), ("neocortex", "visual cortex", "layer 2-3"),
        ("entorhinal cortex", "medial entorhinal cortex", "layer 2"), ("entorhinal cortex", "layer 3"),
        ("cortex", "layer 4"), ("cortex",), ("hippocampus", "CA1", "stratum oriens"),
        ("hippocampus", "CA3", "stratum radiatum"), ("hippocampus", "dentate gyrus", "granule layer"),
        ("cerebellum", "Purkinje layer"), ("spinal cord", "dorsal horn", "lamina I"),
        ("retina", "ganglion cell layer"), ("basal ganglia", "striatum", "dorsal striatum"),
        ("thalamus", "ventral posteromedial nucleus"), ("amygdala", "basolateral amygdala"),
        ("olfactory bulb", "mitral cell layer"), ("brainstem", "nucleus of the solitary tract"),
    ),
    "fly": (
        ("antennal lobe",), ("mushroom body", "calyx"), ("lateral horn",),
        ("protocerebrum", "central complex", "fan-shaped body"), ("optic lobe", "medulla"),
        ("ventral nerve cord", "abdominal neuromere"),
    ),
    "fish": (
        ("optic tectum", "stratum periventriculare"), ("hindbrain", "rhombomere 4"),
        ("spinal cord", "ventral horn"), ("retina", "inner plexiform layer"),
    ),
    "bird": (("optic tectum", "layer 5"), ("nucleus magnocellularis",), ("hippocampus",)),
}  # fmt: skip

_CELLS: dict[str, tuple[tuple[str, ...], ...]] = {
    "mammal": (
        ("pyramidal", "principal cell"), ("Local projecting", "pyramidal", "principal cell"),
        ("interneuron", "basket", "Parvalbumin (PV)-positive"),
        ("interneuron", "Martinotti", "Somatostatin (SOM)-positive"), ("granule", "principal cell"),
        ("Purkinje", "principal cell"), ("stellate", "interneuron"), ("medium spiny", "principal cell"),
        ("ganglion", "principal cell"), ("motoneuron", "principal cell"),
    ),
    "glia": (("microglia", "glia"), ("astrocyte", "glia")),
    "fly": (
        ("projection neuron", "uniglomerular", "principal cell"), ("Kenyon cell", "principal cell"),
        ("local neuron", "interneuron"), ("lobula plate tangential cell",),
    ),
    "fish": (("Mauthner", "principal cell"), ("periventricular neuron", "principal cell"),
             ("motoneuron", "principal cell")),
}  # fmt: skip

_SPECIES: dict[str, _Species] = {
    s.scientific: s
    for s in (
        _Species("mouse", "Mus musculus", ("C57BL/6", "C57BL/6J", "Thy1-YFP-H", "Ai14", "Sst-IRES-Cre"),
                 "mammal", "mammal", "Day"),
        _Species("rat", "Rattus norvegicus", ("Sprague-Dawley", "Wistar", "Long-Evans"),
                 "mammal", "mammal", "Day"),
        _Species("drosophila melanogaster", "Drosophila melanogaster", ("Canton-S", "OregonR", "GH146-Gal4"),
                 "fly", "fly", "Day"),
        _Species("human", "Homo sapiens", ("Not applicable",), "mammal", "mammal", "Year"),
        _Species("zebrafish", "Danio rerio", ("AB", "Tübingen"), "fish", "fish", "Day"),
        _Species("monkey", "Macaca mulatta", ("Rhesus",), "mammal", "mammal", "Year"),
        _Species("C. elegans", "Caenorhabditis elegans", ("N2",), "fly", "fly", "Day"),
        _Species("monkey", "Macaca fascicularis", ("Cynomolgus",), "mammal", "mammal", "Year"),
        *(_Species(common, scientific, ("Not reported",), kind, kind if kind != "bird" else "mammal", "Day")
          for common, scientific, kind in (
            ("cat", "Felis catus", "mammal"), ("chicken", "Gallus gallus domesticus", "bird"),
            ("guinea pig", "Cavia porcellus", "mammal"), ("elephant", "Loxodonta africana", "mammal"),
            ("Hamster", "Mesocricetus auratus", "mammal"), ("dragonfly ", "Anax junius", "fly"),
            ("Praying mantis (Hierodula membranacea)", "Hierodula membranacea", "fly"),
            ("Steller's Sculpin", "Myoxocephalus stelleri", "fish"),
            ("blowfly", "Calliphora vicina", "fly"), ("katydid", "Neoconocephalus triops", "fly"),
            ("grasshopper", "Chorthippus biguttulus", "fly"), ("butterfly", "Danaus plexippus", "fly"),
            ("wasp", "Vespula vulgaris", "fly"), ("termite", "Zootermopsis nevadensis", "fly"),
            ("ferret", "Mustela putorius furo", "mammal"), ("rabbit", "Oryctolagus cuniculus", "mammal"),
            ("sheep", "Ovis aries", "mammal"), ("llama", "Lama glama", "mammal"),
            ("dog", "Canis familiaris", "mammal"), ("giraffe", "Giraffa camelopardalis", "mammal"),
            ("manatee", "Trichechus manatus", "mammal"), ("cow", "Bos taurus", "mammal"),
            ("earthworm", "Lumbricus terrestris", "fly"), ("crayfish", "Procambarus clarkii", "fly"),
            ("lobster", "Homarus americanus", "fly"), ("spider", "Cupiennius salei", "fly"),
            ("squid", "Doryteuthis pealeii", "fly"), ("octopus", "Octopus vulgaris", "fly"),
            ("bat", "Eptesicus fuscus", "mammal"),
            ("gray short-tailed opossum", "Monodelphis domestica", "mammal"),
            ("Azara's agouti", "Dasyprocta azarae", "mammal"), ("hedgehog", "Erinaceus europaeus", "mammal"),
            ("degu", "Octodon degus", "mammal"), ("tamarin", "Saguinus oedipus", "mammal"),
            ("chimpanzee", "Pan troglodytes", "mammal"), ("baboon", "Papio anubis", "mammal"),
            ("goldfish", "Carassius auratus", "fish"), ("toad", "Rhinella marina", "fish"),
            ("salamander", "Ambystoma mexicanum", "fish"), ("turtle", "Trachemys scripta", "fish"),
            ("lizard", "Anolis carolinensis", "fish"), ("hagfish", "Myxine glutinosa", "fish"),
            ("starling", "Sturnus vulgaris", "bird"), ("canary", "Serinus canaria", "bird"),
            ("heron", "Ardea cinerea", "bird"), ("budgerigar", "Melopsittacus undulatus", "bird"),
            ("magpie", "Pica pica", "bird"), ("armadillo", "Dasypus novemcinctus", "mammal"),
            ("mole", "Talpa europaea", "mammal"), ("capybara", "Hydrochoerus hydrochaeris", "mammal"),
            ("seal", "Phoca vitulina", "mammal"), ("walrus", "Odobenus rosmarus", "mammal"),
            ("Proechimys", "Proechimys guyannensis", "mammal"),
            ("long-tailed chinchilla", "Chinchilla lanigera", "mammal"),
            ("naked mole-rat", "Heterocephalus glaber", "mammal"),
            ("Mongolian gerbil", "Meriones unguiculatus mongolicus", "mammal"),
            ("sea lamprey", "Petromyzon marinus marinus", "fish"),
            ("Etruscan shrew", "Suncus etruscus etr", "mammal"),
            ("clouded leopard", "Neofelis nebulosa", "mammal"),
            ("Siberian tiger", "Panthera tigris altaica", "mammal"),
            ("domestic pig", "Sus scrofa domesticus", "mammal"),
            ("rock pigeon", "Columba livia domestica", "bird"),
            ("grey squirrel", "Sciurus carolinensis gr", "mammal"),
            ("bottlenose dolphin", "Tursiops truncatus bd", "mammal"),
            ("humpback whale", "Megaptera novaeangliae hw", "mammal"),
            ("minke whale", "Balaenoptera acutorostrata", "mammal"),
            ("sperm whale", "Physeter macrocephalus", "mammal"),
            ("pygmy hippopotamus", "Choeropsis liberiensis", "mammal"),
            ("common marmoset", "Callithrix jacchus cm", "mammal"),
            ("squirrel monkey (Saimiri)", "Saimiri sciureus", "mammal"),
            ("tree shrew", "Tupaia belangeri", "mammal"),
            ("Japanese quail", "Coturnix japonica jq", "bird"),
            ("zebra finch", "Taeniopygia guttata zf", "bird"), ("barn owl", "Tyto alba ba", "bird"),
            ("house sparrow", "Passer domesticus hs", "bird"),
            ("spiny dogfish", "Squalus acanthias", "fish"),
            ("electric fish", "Apteronotus leptorhynchus", "fish"),
            ("medicinal leech", "Hirudo verbana", "fly"), ("blue crab", "Callinectes sapidus", "fly"),
            ("sea slug", "Aplysia californica", "fly"), ("honey bee", "Apis mellifera ligustica", "fly"),
            ("desert locust", "Schistocerca gregaria dl", "fly"), ("hawk moth", "Manduca sexta hm", "fly"),
            ("house cricket", "Acheta domesticus", "fly"),
            ("American cockroach", "Periplaneta americana ac", "fly"),
            ("African clawed frog", "Xenopus laevis acf", "fish"),
            ("Axolotl", "Ambystoma mexicanum ax", "fish"),
            ("red-eared slider", "Trachemys scripta elegans", "fish"),
          ))
    )
}  # fmt: skip
#: Share of the 2026 catalogue per species (E: mouse 160,070, rat 60,771, human 15,676 of 253,545
#: single-word-species neurons; about 95 species in all). The catalogue is apportioned by these shares:
#: the big archives' species first, the rest of the archives draw per group (``_tail_species``).
_MAIN_SPECIES = ("Mus musculus", "Rattus norvegicus", "Homo sapiens")
_OTHER_SPECIES = tuple(k for k in _SPECIES if k not in _MAIN_SPECIES)
#: Weights for a tail group's species: mouse, rat, then "another species" (taken in turn, so that at full
#: scale every one of the ~95 species appears; inferred: the real long tail is many small uploads).
_TAIL_WEIGHTS = (0.54, 0.41, 0.05)
#: Share of tail groups that are glia (with Siegert's microglia, about 35% of records, E).
_GLIA_SHARE = 0.47

_STAINS = (
    "lucifer yellow", "biocytin", "Golgi", "neurobiotin", "green fluorescent protein (GFP)",
    "horseradish peroxidase (HRP)", "Alexa Fluor 594", "DiI", "tdTomato", "Golgi-Cox",
)  # fmt: skip
_SOFTWARE = (
    ("Neurolucida", "Neurolucida.DAT"), ("Neurolucida", "Neurolucida.asc"),
    ("Neurolucida", "Neurolucida.xml"),
    ("Neurozoom", "Neurozoom.swc"), ("Vaa3D", "Vaa3D.swc"), ("Imaris", "Imaris.swc"),
    ("Simple Neurite Tracer", "SNT.swc"), ("Custom", "Custom.xml"), ("Eutectics", "Eutectics.asc"),
    ("Neuron_Morpho", "Neuron_Morpho.swc"),
)  # fmt: skip
_PROTOCOLS = ("in vivo", "in vitro", "culture", "ex vivo", "Not reported")
_SLICING = ("coronal", "sagittal", "horizontal", "custom", "transverse", "Not reported")
_OBJECTIVES = ("Not reported", "oil", "water", "dry", "glycerin", "multiphoton")
_DOMAINS = ("Dendrites, Soma, No Axon", "Dendrites, Soma, Axon", "Axon, Soma, No Dendrites",
            "Dendrites, No Soma, No Axon")  # fmt: skip
_GLIA_DOMAINS = ("Processes", "Processes, Soma", "Neurites")
#: Where each cell class lives (first words of a region; inferred from textbook anatomy): a neuron's
#: brain_region is drawn among these for its cell type, so no Purkinje cell sits in the retina.
_CELL_REGIONS: dict[str, tuple[str, ...]] = {
    "pyramidal": ("neocortex", "hippocampus/CA", "entorhinal cortex", "cortex", "amygdala"),
    "Purkinje": ("cerebellum",), "granule": ("hippocampus/dentate gyrus",),
    "medium spiny": ("basal ganglia",),
    "ganglion": ("retina",), "motoneuron": ("spinal cord/ventral horn", "hindbrain"),
    "Mauthner": ("hindbrain",), "periventricular neuron": ("optic tectum",),
    "projection neuron": ("antennal lobe",), "Kenyon cell": ("mushroom body",),
    "local neuron": ("antennal lobe",), "lobula plate tangential cell": ("optic lobe",),
    "interneuron": ("neocortex", "hippocampus", "cortex", "entorhinal cortex", "spinal cord/dorsal horn",
                    "thalamus", "amygdala", "olfactory bulb", "brainstem", "basal ganglia"),
}  # fmt: skip
#: Adult weight ranges in grams per species (inferred from standard husbandry tables; the real server's
#: weights are free text, F). Other species are not weighed.
_ADULT_GRAMS: dict[str, tuple[float, float]] = {
    "Mus musculus": (18.0, 35.0), "Rattus norvegicus": (200.0, 450.0),
    "Macaca mulatta": (4500.0, 10000.0), "Macaca fascicularis": (3000.0, 8000.0),
    "Felis catus": (2500.0, 5000.0), "Cavia porcellus": (700.0, 1200.0),
    "Mustela putorius furo": (700.0, 2000.0), "Oryctolagus cuniculus": (2000.0, 4500.0),
}  # fmt: skip
#: Age in days (Day scale) or years (Year scale) per age class, and the share of adult weight.
_AGE_RANGES: dict[str, dict[str, tuple[float, float, float]]] = {
    "Day": {"neonatal": (1, 10, 0.15), "young": (14, 45, 0.6), "adult": (60, 365, 1.0),
            "old": (540, 900, 1.1)},
    "Year": {"young": (1, 4, 0.4), "adult": (5, 19, 1.0), "old": (20, 30, 1.05)},
    "Larval": {"larval": (3, 10, 1.0), "adult": (30, 120, 1.0)},
}  # fmt: skip
_ATTRIBUTES = ("Diameter, 3D, Angles", "No Diameter, 3D, Angles", "Diameter, 2D, Angles",
               "Diameter, 3D, No Angles")  # fmt: skip
_INTEGRITY = ("Dendrites Moderate", "Dendrites Complete", "Dendrites & Axon Complete", "Dendrites Incomplete",
              "Axon Complete", "Processes Complete")  # fmt: skip
_GENDERS = ("Male", "Female", "Male/Female", "Not reported")
_CONDITIONS = (("Control",), ("Control", "Aging"), ("Transgenic", "CKp25"), ("Treated with LPS",),
               ("Knockout",), ("In vitro culture",))  # fmt: skip
_NOTE = (
    "When originally released, this reconstruction had been incompletely processed, and this issue was "
    "fixed in a later release. The previous version of the processed file is available on request."
)
_AGE_CLASSES = ("young", "adult", "old", "neonatal", "embryonic", "larval", "Not reported")

_BIG_ARCHIVES: tuple[tuple[str, float, str, tuple[tuple[str, float], ...] | None], ...] = (
    # name, share of the catalogue, name style, species (scientific names, weights; None: drawn per group)
    ("Allen Cell Types", 0.30, "allen", (("Homo sapiens", 0.2), ("Mus musculus", 0.8))),
    ("Jefferis", 0.02, "jefferis", (("Drosophila melanogaster", 1.0),)),
    ("Siegert", 0.07, "siegert", (("Mus musculus", 1.0),)),
    ("Wearne_Hof", 0.02, "cnic", (("Macaca mulatta", 1.0),)),
    ("Synthetic_Awkward", 0.01, "awkward", None),
)
#: Tail archives whose real names are recorded (reference A7, F): their neurons are named that way.
_NAMED_ARCHIVES = {"Ascoli": "ascoli", "Scanziani": "scanziani", "Smith": "smith", "Amaral": "amaral"}
_TAIL_ARCHIVES = (
    "Amaral", "Smith", "Scanziani", "Chiang", "Turner", "Kawaguchi", "Ascoli", "Martone", "Yuste",
    "Claiborne", "Jaffe", "Spruston", "Svoboda", "Larkman", "Markram", "DeFelipe", "Dendritica", "Hay",
    "Buzsaki",
    "Helmstaedter", "Staiger", "Chen", "Wang", "Zhang", "Kisvarday", "Mizrahi", "Bergstrom", "Tolias",
    "Brown", "Cauli", "Gulyas", "Soltesz", "Urban", "Miller", "Pinto", "Topolnik", "Nedivi", "Ferrante",
    "Cline", "Meyer",
    "Gonzalez Burgos", "Müller", "Hof", "Jacobs", "Kole", "Lübke", "Segev", "Stuart", "Wittner", "Zilles",
)  # fmt: skip
_TAIL_STYLES = ("abbr_num", "cellx", "dated", "ground", "long")
_SIEGERT_PREFIX = recorded.SIEGERT_PREFIX
#: Name styles of the groups that hold recorded neurons (their names and values are not synthetic).
_RECORDED_STYLES = frozenset({"cnic_001", "trace"})
_TRACE_NAMES = frozenset(recorded.SIEGERT_TRACES)
